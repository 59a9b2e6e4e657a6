"""The ``artiflow://<name>`` Asset URI scheme: sanitiser, factory and OpenLineage converter.

Every artifact name maps onto one Airflow Asset, ``Asset(uri="artiflow://<name>")``: the Asset
stands for the artifact (all its versions); each asset event carries the committed version in
its extra, ``{"version": "v3", "digest": "...", "type": "dataset"}``. Registered for the
``artiflow`` scheme under ``asset-uris`` in :func:`artiflow.airflow.get_provider_info`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult

from airflow.sdk import Asset, AssetAlias

if TYPE_CHECKING:
    from openlineage.client.event_v2 import Dataset

    from artiflow import Artifact

__all__ = [
    "OPENLINEAGE_NAMESPACE",
    "SCHEME",
    "add_assets",
    "artifact_alias",
    "artifact_asset",
    "artifact_uri",
    "asset_extra",
    "convert_asset_to_openlineage",
    "create_asset",
    "declared_asset",
    "name_from_ref",
    "sanitize_uri",
]

SCHEME = "artiflow"
#: OpenLineage namespace of an artiflow dataset when the registry is not known (an Asset
#: declared in a DAG); lineage reported at run time uses the registry's own namespace
#: (:func:`artiflow.openlineage.dataset_namespace`, e.g. ``artiflow+s3://bucket/prefix``).
OPENLINEAGE_NAMESPACE = "artiflow"

# Artifact names: 1-128 characters from letters, digits, '.', '_' and '-' (artiflow.naming).
_NAME_RE = re.compile(r"[A-Za-z0-9._-]{1,128}")
_TEMPLATE_MARKERS = ("{{", "{%")


def artifact_uri(name: str) -> str:
    """Return the Asset URI of artifact ``name``: ``artiflow://<name>``."""
    if not _NAME_RE.fullmatch(name):
        raise ValueError(
            f"invalid artifact name {name!r} for an asset URI: use 1-128 characters from "
            "letters, digits, '.', '_' and '-'"
        )
    return f"{SCHEME}://{name}"


def artifact_asset(name: str, *, extra: dict[str, Any] | None = None) -> Asset:
    """Return the Airflow Asset that stands for artifact ``name``.

    Use it in ``schedule=[artifact_asset("clean-data")]`` to run a DAG whenever a task logs a
    version of ``clean-data``; it equals ``Asset(uri="artiflow://clean-data")``.

    :param name: the artifact name.
    :param extra: optional static extra of the Asset (not the per-event extra).
    """
    return Asset(uri=artifact_uri(name), extra=extra)


def artifact_alias(dag_id: str | None, task_id: str) -> AssetAlias:
    """Return the AssetAlias a task declares when its artifact names are only known at run time."""
    owner = f"{dag_id}." if dag_id else ""
    return AssetAlias(name=f"artiflow:{owner}{task_id}")


def add_assets(
    declared: Sequence[Asset | AssetAlias], new: Iterable[Asset | AssetAlias]
) -> list[Asset | AssetAlias]:
    """``declared`` followed by the assets of ``new`` it does not already hold.

    An Asset counts as held when one with the same URI is declared, whatever its name: the user
    may declare ``Asset(name="dog", uri="artiflow://dog-model")`` themselves, and a second
    Asset with that URI but another name would make Airflow refuse the task
    (``AirflowInactiveAssetInInletOrOutletException``).
    """
    result = list(declared)
    uris = {a.uri for a in result if isinstance(a, Asset)}
    for asset in new:
        if isinstance(asset, Asset):
            if asset.uri in uris:
                continue
            uris.add(asset.uri)
        elif asset in result:
            continue
        result.append(asset)
    return result


def declared_asset(outlets: Iterable[object], uri: str) -> Asset | None:
    """The Asset among ``outlets`` whose URI is ``uri`` (the object the user declared)."""
    return next((o for o in outlets if isinstance(o, Asset) and o.uri == uri), None)


def is_templated(value: object) -> bool:
    """Whether ``value`` is a Jinja template string (its final value is known only at run time)."""
    return isinstance(value, str) and any(marker in value for marker in _TEMPLATE_MARKERS)


def name_from_ref(ref: str) -> str:
    """Return the artifact name of a reference: ``"cats:v3"`` or ``"cats:latest"`` -> ``cats``."""
    return ref.split(":", 1)[0]


def static_name(ref: object) -> str | None:
    """The artifact name of ``ref`` if it is known at parse time, else ``None``."""
    if not isinstance(ref, str) or is_templated(ref):
        return None
    name = name_from_ref(ref)
    return name if _NAME_RE.fullmatch(name) else None


def asset_extra(artifact: Artifact) -> dict[str, Any]:
    """The extra of the asset event for a committed ``artifact``: version, digest and type."""
    return {"version": artifact.version, "digest": artifact.digest, "type": artifact.type}


def sanitize_uri(uri: SplitResult) -> SplitResult:
    """Normalise an ``artiflow://<name>`` URI; Airflow calls this for every ``artiflow`` Asset.

    Airflow has already lower-cased the scheme, dropped the fragment and turned an empty path
    into ``/``; artifact names are case-sensitive, so the name is kept as written.

    :param uri: the split URI.
    :raises ValueError: the URI does not name exactly one valid artifact.
    """
    if not uri.netloc:
        raise ValueError("an artiflow URI needs an artifact name: artiflow://<name>")
    if not _NAME_RE.fullmatch(uri.netloc):
        raise ValueError(
            f"invalid artifact name {uri.netloc!r} in artiflow URI: use 1-128 characters from "
            "letters, digits, '.', '_' and '-'"
        )
    if uri.path not in ("", "/") or uri.query:
        raise ValueError(
            "an artiflow URI names an artifact, not a version or a file: "
            f"use artiflow://{uri.netloc} (the version travels in the asset event extra)"
        )
    return uri._replace(path="", query="", fragment="")


def create_asset(*, name: str, extra: dict[str, Any] | None = None, **_: Any) -> Asset:
    """Asset factory for the ``artiflow`` scheme (used by the hook lineage collector).

    :param name: the artifact name.
    :param extra: the asset extra, e.g. ``{"version": "v3", "digest": ..., "type": ...}``.
    """
    return Asset(uri=artifact_uri(name), extra=extra)


def convert_asset_to_openlineage(asset: Asset, lineage_context: Any) -> Dataset:
    """Translate an ``artiflow://<name>`` Asset into an OpenLineage dataset.

    The name is the artifact name; the namespace is the registry's (``namespace`` in the asset
    extra, as the hook lineage collector receives it) or ``artiflow``. When the extra carries a
    ``version``, the dataset gets a ``version`` facet (``datasetVersion`` = ``v3``, plus the
    ``digest``), and a ``type`` becomes a ``datasetType`` facet (``ARTIFACT`` / ``dataset``).

    :param asset: the Asset (its extra may hold version, digest and type).
    :param lineage_context: the hook or operator that reported it (unused).
    """
    from openlineage.client.event_v2 import Dataset

    name = sanitize_uri(_split(asset.uri)).netloc
    extra = asset.extra or {}
    return Dataset(
        namespace=str(extra.get("namespace") or OPENLINEAGE_NAMESPACE),
        name=name,
        facets=openlineage_facets(extra),
    )


def openlineage_facets(extra: dict[str, Any]) -> dict[str, Any]:
    """OpenLineage dataset facets for an artifact version described by an asset ``extra``."""
    from openlineage.client.facet_v2 import dataset_type_dataset, dataset_version_dataset

    facets: dict[str, Any] = {}
    if extra.get("version"):
        version: Any = dataset_version_dataset.DatasetVersionDatasetFacet(
            datasetVersion=str(extra["version"])
        )
        if extra.get("digest"):
            version = version.with_additional_properties(digest=str(extra["digest"]))
        facets["version"] = version
    if extra.get("type"):
        facets["datasetType"] = dataset_type_dataset.DatasetTypeDatasetFacet(
            datasetType="ARTIFACT", subType=str(extra["type"])
        )
    return facets


def _split(uri: str) -> SplitResult:
    from urllib.parse import urlsplit

    return urlsplit(uri)
