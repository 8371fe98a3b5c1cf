"""Workaround 10 for S3: the actions and resources AWS authorizes an S3 request by.

Which IAM action each bucket and object request needs (by method and subresource, with
and without a version), and CopyObject's read of its source.
"""

from __future__ import annotations

from urllib.parse import unquote

from pipeline_tasks.local.moto_workarounds.iam_requests import RequestFacts


def s3_permissions(facts: RequestFacts, resource: str) -> list[tuple[str, str]]:
    """The S3 actions a request needs, on which resources (``resource``: moto's bucket or object ARN)."""
    query = facts.query
    versioned = "versionId" in query
    target = resource.split(":::", 1)[1]
    if target == "*":
        return [("s3:ListAllMyBuckets", "*")]
    key = target.partition("/")[2]
    if not key:
        if facts.method == "POST" and "delete" in query:
            return []  # DeleteObjects: each key is authorized on its own (the bucket's get_permission)
        bucket_actions = _S3_BUCKET_ACTIONS.get(facts.method, {})
        action = next((a for q, a in bucket_actions.items() if q in query), bucket_actions.get("", facts.operation))
        return [(f"s3:{action}", resource)]
    object_actions = _S3_OBJECT_ACTIONS.get(facts.method, {})
    plain, version = next(
        (a for q, a in object_actions.items() if q in query), object_actions.get("", (facts.operation, None))
    )
    needed = [(f"s3:{version if versioned and version else plain}", resource)]
    source = facts.headers.get("x-amz-copy-source")
    if facts.method == "PUT" and source and not ({"tagging", "acl"} & set(query)):
        path, _, source_query = unquote(source).lstrip("/").partition("?")
        source_version = "versionId=" in source_query
        needed.append(
            (
                "s3:GetObjectVersion" if source_version else "s3:GetObject",
                f"arn:{facts.partition}:s3:::{path}",
            )
        )
    return needed


#: Bucket requests: the query parameter that names the subresource, and the IAM action.
_S3_BUCKET_ACTIONS: dict[str, dict[str, str]] = {
    "HEAD": {"": "ListBucket"},
    "GET": {
        "versions": "ListBucketVersions",
        "uploads": "ListBucketMultipartUploads",
        "location": "GetBucketLocation",
        "versioning": "GetBucketVersioning",
        "notification": "GetBucketNotification",
        "lifecycle": "GetLifecycleConfiguration",
        "policy": "GetBucketPolicy",
        "policyStatus": "GetBucketPolicyStatus",
        "encryption": "GetEncryptionConfiguration",
        "publicAccessBlock": "GetBucketPublicAccessBlock",
        "ownershipControls": "GetBucketOwnershipControls",
        "object-lock": "GetBucketObjectLockConfiguration",
        "tagging": "GetBucketTagging",
        "cors": "GetBucketCORS",
        "acl": "GetBucketAcl",
        "logging": "GetBucketLogging",
        "website": "GetBucketWebsite",
        "accelerate": "GetAccelerateConfiguration",
        "replication": "GetReplicationConfiguration",
        "": "ListBucket",
    },
    "PUT": {
        "versioning": "PutBucketVersioning",
        "notification": "PutBucketNotification",
        "lifecycle": "PutLifecycleConfiguration",
        "policy": "PutBucketPolicy",
        "encryption": "PutEncryptionConfiguration",
        "publicAccessBlock": "PutBucketPublicAccessBlock",
        "ownershipControls": "PutBucketOwnershipControls",
        "object-lock": "PutBucketObjectLockConfiguration",
        "tagging": "PutBucketTagging",
        "cors": "PutBucketCORS",
        "acl": "PutBucketAcl",
        "logging": "PutBucketLogging",
        "website": "PutBucketWebsite",
        "accelerate": "PutAccelerateConfiguration",
        "replication": "PutReplicationConfiguration",
        "": "CreateBucket",
    },
    "DELETE": {
        "lifecycle": "PutLifecycleConfiguration",
        "policy": "DeleteBucketPolicy",
        "encryption": "PutEncryptionConfiguration",
        "publicAccessBlock": "PutBucketPublicAccessBlock",
        "ownershipControls": "PutBucketOwnershipControls",
        "tagging": "PutBucketTagging",
        "cors": "PutBucketCORS",
        "website": "DeleteBucketWebsite",
        "replication": "PutReplicationConfiguration",
        "": "DeleteBucket",
    },
}
#: Object requests: the query parameter that names the operation, and its IAM action without and with a version.
_S3_OBJECT_ACTIONS: dict[str, dict[str, tuple[str, str | None]]] = {
    "HEAD": {"": ("GetObject", "GetObjectVersion")},
    "GET": {
        "uploadId": ("ListMultipartUploadParts", None),
        "tagging": ("GetObjectTagging", "GetObjectVersionTagging"),
        "acl": ("GetObjectAcl", "GetObjectVersionAcl"),
        "attributes": ("GetObjectAttributes", "GetObjectVersionAttributes"),
        "retention": ("GetObjectRetention", None),
        "legal-hold": ("GetObjectLegalHold", None),
        "": ("GetObject", "GetObjectVersion"),
    },
    "PUT": {
        "tagging": ("PutObjectTagging", "PutObjectVersionTagging"),
        "acl": ("PutObjectAcl", "PutObjectVersionAcl"),
        "retention": ("PutObjectRetention", None),
        "legal-hold": ("PutObjectLegalHold", None),
        "": ("PutObject", None),  # with partNumber/uploadId: UploadPart(Copy), also s3:PutObject
    },
    "DELETE": {
        "uploadId": ("AbortMultipartUpload", None),
        "tagging": ("DeleteObjectTagging", "DeleteObjectVersionTagging"),
        "": ("DeleteObject", "DeleteObjectVersion"),
    },
    "POST": {
        "uploads": ("PutObject", None),
        "uploadId": ("PutObject", None),
        "restore": ("RestoreObject", None),
        "select": ("GetObject", None),
    },
}
