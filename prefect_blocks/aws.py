"""``S3ArtifactRegistry``: an artiflow registry on S3 or MinIO with a nested prefect-aws block.

Needs the ``prefect-aws`` extra (``pip install 'artiflow[prefect-aws,s3]'``). The nested
``AwsCredentials`` or ``MinIOCredentials`` block is turned into s3fs options when the registry is
built; its secrets stay in Prefect's encrypted block storage and in memory.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from artiflow.errors import MissingDependency

try:
    from prefect_aws import AwsCredentials, MinIOCredentials
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise MissingDependency(
        "artiflow.prefect.aws needs prefect-aws: pip install 'artiflow[prefect-aws]'"
    ) from err

from .blocks import DOCUMENTATION_URL, ArtifactRegistry

__all__ = ["S3ArtifactRegistry", "s3_storage_options"]


class S3ArtifactRegistry(ArtifactRegistry):
    """An artiflow registry whose store is on S3 (or MinIO), with nested AWS credentials.

    The nested ``AwsCredentials`` (keys, session token, profile, region, endpoint, or an
    assumed role) or ``MinIOCredentials`` block becomes the s3fs options of the store.
    ``storage_options`` and ``secret_storage_options`` still apply on top.

    Example:
        Load a saved S3 registry:
        ```python
        from artiflow.prefect.aws import S3ArtifactRegistry

        s3_artifact_registry_block = S3ArtifactRegistry.load("BLOCK_NAME")
        registry = s3_artifact_registry_block.registry()
        ```
    """

    _block_type_name = "Artiflow S3 Registry"
    _block_type_slug = "artiflow-s3-registry"
    _documentation_url = DOCUMENTATION_URL
    _description = (
        "An artiflow registry on S3 or MinIO, authenticated by a nested prefect-aws "
        "AwsCredentials or MinIOCredentials block."
    )

    credentials: AwsCredentials | MinIOCredentials = Field(
        default_factory=AwsCredentials,
        description="AWS or MinIO credentials used to reach the S3 store.",
    )

    def credential_storage_options(self) -> dict[str, Any]:
        """Return the s3fs options of the nested credentials block.

        Returns:
            s3fs keyword arguments (``key``, ``secret``, ``token``, ``profile``,
            ``client_kwargs``, ...).
        """
        return s3_storage_options(self.credentials)


def s3_storage_options(credentials: AwsCredentials | MinIOCredentials) -> dict[str, Any]:
    """Translate a prefect-aws credentials block into s3fs options.

    An ``assume_role_arn`` is resolved through boto3 into temporary keys, since s3fs cannot
    assume a role by itself.

    Args:
        credentials: An ``AwsCredentials`` or ``MinIOCredentials`` block.

    Returns:
        A JSON-safe dict of s3fs options, secrets included: keep it in memory only.
    """
    options: dict[str, Any] = {}
    client_kwargs: dict[str, Any] = {}
    params = credentials.aws_client_parameters
    if params.endpoint_url:
        client_kwargs["endpoint_url"] = params.endpoint_url
    if params.verify_cert_path:
        client_kwargs["verify"] = str(params.verify_cert_path)
    elif params.verify is not None:
        client_kwargs["verify"] = (
            params.verify if isinstance(params.verify, bool) else str(params.verify)
        )
    if params.api_version:
        client_kwargs["api_version"] = params.api_version
    if not params.use_ssl:
        options["use_ssl"] = False
    if params.config:
        options["config_kwargs"] = dict(params.config)
    if credentials.region_name:
        client_kwargs["region_name"] = credentials.region_name

    if isinstance(credentials, MinIOCredentials):
        options["key"] = credentials.minio_root_user
        options["secret"] = credentials.minio_root_password.get_secret_value()
    elif credentials.assume_role_arn:
        frozen = credentials.get_boto3_session().get_credentials().get_frozen_credentials()
        options.update(key=frozen.access_key, secret=frozen.secret_key, token=frozen.token)
    else:
        if credentials.aws_access_key_id:
            options["key"] = credentials.aws_access_key_id
        if credentials.aws_secret_access_key:
            options["secret"] = credentials.aws_secret_access_key.get_secret_value()
        if credentials.aws_session_token:
            options["token"] = credentials.aws_session_token
        if credentials.profile_name:
            options["profile"] = credentials.profile_name
    if client_kwargs:
        options["client_kwargs"] = client_kwargs
    return options
