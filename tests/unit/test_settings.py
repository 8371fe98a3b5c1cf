from pipeline_tasks.settings import Settings


def test_defaults_are_the_products_resource_names():
    settings = Settings.from_env({})
    assert settings.bucket == "lab6-realtime-ecommerce-pipelines"
    assert (settings.order_kpis_table, settings.category_kpis_table) == ("OrderKPIs", "CategoryKPIs")
    assert settings.lake == "s3://lab6-realtime-ecommerce-pipelines/staging"
    assert settings.spark_master == "local[*]" and settings.spark_remote is None


def test_environment_overrides_and_round_trip():
    env = {
        "PIPELINE_BUCKET": "b",
        "PIPELINE_SPARK_SHUFFLE_PARTITIONS": "8",
        "PIPELINE_SPARK_CONF": "spark.a=1, spark.b=x=y",
        "PIPELINE_SPARK_REMOTE": "sc://host:15002",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    settings = Settings.from_env(env)
    assert settings.bucket == "b" and settings.spark_shuffle_partitions == 8
    assert settings.spark_conf == {"spark.a": "1", "spark.b": "x=y"}
    assert settings.region == "eu-west-1" and settings.aws_endpoint_url == "http://127.0.0.1:5000"
    assert Settings.from_env(settings.to_env()) == settings
