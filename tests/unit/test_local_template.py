"""pipeline_tasks.local.template: the local stack is infra/pipeline.yaml, with only this machine's overlay."""

from __future__ import annotations

import io
import zipfile

from pipeline_tasks.local import template
from pipeline_tasks.settings import Settings


class _Uploads:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_object(self, *, Bucket: str, Key: str, Body: bytes) -> None:
        self.objects[f"{Bucket}/{Key}"] = Body


def test_the_overlay_adds_only_what_the_template_leaves_unset():
    body = template.load()
    variables = {"PIPELINE_BUCKET": "not-the-template's", "PIPELINE_SPARK_JARS_DIR": "/opt/jars"}
    overlaid = template.overlay(body, variables)
    for resource in template.resources_of(overlaid, "AWS::ECS::TaskDefinition").values():
        environment = {e["Name"]: e["Value"] for e in resource["Properties"]["ContainerDefinitions"][0]["Environment"]}
        assert environment["PIPELINE_BUCKET"] == {"Ref": "DataBucket"}  # the template wins
        assert environment["PIPELINE_SPARK_JARS_DIR"] == "/opt/jars"
    for resource in template.resources_of(overlaid, "AWS::Lambda::Function").values():
        environment = resource["Properties"]["Environment"]["Variables"]
        assert environment["PIPELINE_BUCKET"] == {"Ref": "DataBucket"}
        assert environment["PIPELINE_SPARK_JARS_DIR"] == "/opt/jars"
    assert template.load() == body  # the loaded template itself is unchanged


def test_the_overlay_is_what_differs_from_the_defaults():
    settings = Settings(spark_jars_dir="/opt/jars", bucket="b", aws_access_key_id="k")
    assert template.local_environment(settings) == {"PIPELINE_SPARK_JARS_DIR": "/opt/jars", "PIPELINE_BUCKET": "b"}
    assert template.local_environment(Settings()) == {}


def test_packaging_uploads_local_paths_as_cloudformation_package_does():
    uploads = _Uploads()
    packaged = template.package(template.load(), template.TEMPLATE.parent, uploads, "artifacts", "stack")
    for name, resource in template.resources_of(packaged, "AWS::Lambda::Function").items():
        assert resource["Properties"]["Code"] == {"S3Bucket": "artifacts", "S3Key": f"stack/{name}.zip"}
        names = zipfile.ZipFile(io.BytesIO(uploads.objects[f"artifacts/stack/{name}.zip"])).namelist()
        handler = resource["Properties"]["Handler"].rsplit(".", 1)[0].replace(".", "/") + ".py"
        assert handler in names
    [machine] = template.resources_of(packaged, "AWS::StepFunctions::StateMachine").values()
    location = machine["Properties"]["DefinitionS3Location"]
    assert location == {"Bucket": "artifacts", "Key": "stack/StateMachine.asl.json"}
    definition = (template.REPO / "statemachine" / "pipeline.asl.json").read_bytes()
    assert uploads.objects["artifacts/stack/StateMachine.asl.json"] == definition
