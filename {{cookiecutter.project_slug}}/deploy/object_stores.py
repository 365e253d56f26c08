"""The S3 and GCS clients behind the s3 and gcs targets: list with checksums, put, delete."""

from __future__ import annotations

import base64
import hashlib
import urllib.parse
from dataclasses import dataclass

from deploy import DeployError


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def split_bucket_uri(uri: str, scheme: str) -> tuple[str, str]:
    """("bucket", "prefix/") from scheme://bucket/prefix. A bucket's root is refused.

    The sync deletes whatever the prefix holds that dags/ does not: at a bucket's root that would
    be everything else in the bucket, an XCom store included.
    """
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme != scheme or not parsed.netloc or parsed.query or parsed.fragment:
        raise DeployError(f"DEPLOY_TARGET_URI must look like {scheme}://bucket/prefix, not {uri!r}")
    prefix = parsed.path.strip("/")
    if not prefix:
        raise DeployError(
            f"DEPLOY_TARGET_URI={uri} is the root of bucket {parsed.netloc!r}: give a prefix that holds this "
            f"project's DAGs only, such as {scheme}://{parsed.netloc}/dags (the deploy deletes what else it holds)"
        )
    if ".." in prefix.split("/"):
        raise DeployError(f"DEPLOY_TARGET_URI={uri}: '..' is not allowed in the prefix")
    return parsed.netloc, f"{prefix}/"


@dataclass
class S3Store:
    bucket: str
    prefix: str
    client: object
    # What the SDK raises; the target reports it as a failed deploy.
    errors: tuple[type[Exception], ...] = ()

    @classmethod
    def connect(cls, uri: str) -> S3Store:
        bucket, prefix = split_bucket_uri(uri, "s3")
        import boto3
        import botocore.exceptions

        # boto3's standard chain: environment, profile, instance or pod role; AWS_ENDPOINT_URL too.
        errors = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)
        return cls(bucket, prefix, boto3.client("s3"), errors)

    def list(self) -> dict[str, str]:
        stored = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
            for item in page.get("Contents", []):
                relative = item["Key"][len(self.prefix) :]
                if relative and not relative.endswith("/"):
                    # A multipart upload's ETag is not an MD5; it never matches, so it is re-uploaded.
                    stored[relative] = item["ETag"].strip('"')
        return stored

    def put(self, relative: str, data: bytes) -> None:
        checksum = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
        self.client.put_object(Bucket=self.bucket, Key=self.prefix + relative, Body=data, ContentMD5=checksum)

    def delete(self, relatives: list[str]) -> None:
        for start in range(0, len(relatives), 1000):
            batch = [{"Key": self.prefix + relative} for relative in relatives[start : start + 1000]]
            answer = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            if failed := answer.get("Errors"):
                raise DeployError(f"could not delete {[error['Key'] for error in failed]}: {failed[0]['Message']}")


@dataclass
class GcsStore:
    bucket: str
    prefix: str
    client: object
    errors: tuple[type[Exception], ...] = ()

    @classmethod
    def connect(cls, uri: str) -> GcsStore:
        bucket, prefix = split_bucket_uri(uri, "gs")
        import google.api_core.exceptions
        import google.auth.exceptions
        from google.cloud import storage

        errors = (google.api_core.exceptions.GoogleAPIError, google.auth.exceptions.GoogleAuthError)
        try:
            # google-auth's standard chain: GOOGLE_APPLICATION_CREDENTIALS, gcloud, workload identity.
            return cls(bucket, prefix, storage.Client(), errors)
        except errors as error:
            raise DeployError(f"no Google Cloud credentials: {error}") from None

    def list(self) -> dict[str, str]:
        stored = {}
        for blob in self.client.list_blobs(self.bucket, prefix=self.prefix):
            relative = blob.name[len(self.prefix) :]
            if relative and not relative.endswith("/"):
                # Composite objects carry no MD5; "" never matches, so they are re-uploaded.
                stored[relative] = base64.b64decode(blob.md5_hash).hex() if blob.md5_hash else ""
        return stored

    def put(self, relative: str, data: bytes) -> None:
        self.client.bucket(self.bucket).blob(self.prefix + relative).upload_from_string(data)

    def delete(self, relatives: list[str]) -> None:
        bucket = self.client.bucket(self.bucket)
        for relative in relatives:
            bucket.blob(self.prefix + relative).delete()
