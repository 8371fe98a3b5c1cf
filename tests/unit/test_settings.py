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


def test_overrides_win_over_the_environment_and_none_is_ignored():
    from pipeline_tasks.settings import Settings

    env = {"PIPELINE_BUCKET": "from-env", "PIPELINE_CELL_TIMEOUT": "60", "AWS_ENDPOINT_URL": "http://127.0.0.1:5000"}
    settings = Settings.from_env(env, bucket="from-parameter", aws_endpoint_url=None)
    assert (settings.bucket, settings.cell_timeout) == ("from-parameter", 60)
    assert settings.aws_endpoint_url == "http://127.0.0.1:5000"


def test_absolute_paths_for_a_kernel_in_another_folder(tmp_path, monkeypatch):
    from pipeline_tasks.settings import Settings

    monkeypatch.chdir(tmp_path)
    settings = Settings(lake_root="lake").with_absolute_paths()
    assert settings.spark_jars_dir == str(tmp_path / ".jars")
    assert settings.notebooks_dir == str(tmp_path / "notebooks")
    assert settings.lake_root == str(tmp_path / "lake")
    assert Settings(lake_root="s3://b/staging").with_absolute_paths().lake_root == "s3://b/staging"


def test_local_sessions_map_the_class_archive_only_when_it_is_there(tmp_path):
    from pipeline_tasks.io.spark import CLASS_ARCHIVE, session_conf

    settings = Settings(spark_jars_dir=str(tmp_path))
    assert "spark.driver.extraJavaOptions" not in session_conf(settings)
    (tmp_path / CLASS_ARCHIVE).write_bytes(b"archive")
    assert session_conf(settings)["spark.driver.extraJavaOptions"].startswith(
        f"-XX:SharedArchiveFile={tmp_path / CLASS_ARCHIVE}"
    )
    chosen = {"spark.driver.extraJavaOptions": "-Xmx1g"}
    assert (
        session_conf(Settings(spark_jars_dir=str(tmp_path), spark_conf=chosen))["spark.driver.extraJavaOptions"]
        == "-Xmx1g"
    )
    assert "spark.driver.extraJavaOptions" not in session_conf(
        Settings(spark_jars_dir=str(tmp_path), spark_master="spark://h:7077")
    )


def test_short_lived_local_sessions_skip_the_c2_compiler(tmp_path):
    from pipeline_tasks.io.spark import CLASS_ARCHIVE, SHORT_LIVED_JVM_OPTIONS, session_conf

    settings = Settings(spark_jars_dir=str(tmp_path))
    assert session_conf(settings, short_lived=True)["spark.driver.extraJavaOptions"] == SHORT_LIVED_JVM_OPTIONS
    (tmp_path / CLASS_ARCHIVE).write_bytes(b"archive")
    options = session_conf(settings, short_lived=True)["spark.driver.extraJavaOptions"].split()
    assert options[0] == f"-XX:SharedArchiveFile={tmp_path / CLASS_ARCHIVE}"
    assert SHORT_LIVED_JVM_OPTIONS in options
    assert SHORT_LIVED_JVM_OPTIONS not in session_conf(settings)["spark.driver.extraJavaOptions"]
    # A cluster's driver is not ours to tune; the user's own options win.
    remote = Settings(spark_jars_dir=str(tmp_path), spark_master="spark://h:7077")
    assert "spark.driver.extraJavaOptions" not in session_conf(remote, short_lived=True)
    chosen = Settings(spark_jars_dir=str(tmp_path), spark_conf={"spark.driver.extraJavaOptions": "-Xmx1g"})
    assert session_conf(chosen, short_lived=True)["spark.driver.extraJavaOptions"] == "-Xmx1g"
