"""The ``artiflow://<name>`` Asset URI scheme: sanitiser, factory and OpenLineage converter,
and the inlets and outlets a task declares at parse time.

Every artifact name maps onto one Airflow Asset, ``Asset(uri="artiflow://<name>")``
(:func:`artiflow.naming.artifact_uri`): the Asset stands for the artifact (all its versions);
each asset event carries the committed version in its extra,
``{"version": "v3", "digest": "...", "type": "dataset"}``
(:func:`artiflow.orchestration.event_extra`). Registered for the ``artiflow`` scheme under
``asset-uris`` in :func:`artiflow.airflow.get_provider_info`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult

from airflow.sdk import Asset, AssetAlias

from artiflow.naming import URI_SCHEME, artifact_uri, name_from_uri, ref_name

if TYPE_CHECKING:
    from openlineage.client.event_v2 import Dataset

__all__ = [
    "OPENLINEAGE_NAMESPACE",
    "SCHEME",
    "add_assets",
    "artifact_alias",
    "artifact_asset",
    "artifact_uri",
    "convert_asset_to_openlineage",
    "create_asset",
    "declare_assets",
    "declared_asset",
    "is_templated",
    "is_xcom",
    "openlineage_facets",
    "sanitize_uri",
    "static_name",
]

SCHEME = URI_SCHEME
#: OpenLineage namespace of an artiflow dataset when the registry is not known (an Asset
#: declared in a DAG); lineage reported at run time uses the registry's own namespace
#: (:attr:`artiflow.Registry.lineage_namespace`, e.g. ``artiflow+s3://bucket/prefix``).
OPENLINEAGE_NAMESPACE = "artiflow"

_TEMPLATE_MARKERS = ("{{", "{%")


def artifact_asset(name: str, *, extra: dict[str, Any] | None = None) -> Asset:
    """Return the Airflow Asset that stands for artifact ``name``.

    Use it in ``schedule=[artifact_asset("clean-data")]`` to run a DAG whenever a task logs a
    version of ``clean-data``; it equals ``Asset(uri="artiflow://clean-data")``.

    :param name: the artifact name.
    :param extra: optional static extra of the Asset (not the per-event extra).
    :raises artiflow.errors.InvalidName: ``name`` is not a valid artifact name.
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


def is_xcom(value: object) -> bool:
    """Whether ``value`` is resolved by Airflow before execution (an XCom or mapped argument)."""
    from airflow.sdk.definitions._internal.mixins import ResolveMixin

    return isinstance(value, ResolveMixin)


def static_name(ref: object) -> str | None:
    """The artifact name of reference ``ref`` if it is known at parse time, else ``None``."""
    if is_templated(ref):
        return None
    return ref_name(ref)


def declare_assets(task: Any, inputs: Iterable[object], outputs: Iterable[object]) -> None:
    """Add to a task's inlets and outlets the assets of the artifacts it uses and produces.

    At parse time, so that the serialised DAG holds them (Airflow drops events for assets no
    DAG declares): an inlet per input reference whose name is known, an outlet per output name
    that is known, and the task's artiflow AssetAlias when an output's name is only known at run
    time (a template or an XCom reference). ``task`` is an operator or a mapped operator.
    """
    names = list(outputs)
    outlets: list[Asset | AssetAlias] = [
        artifact_asset(known) for name in names if (known := static_name(name)) is not None
    ]
    if any(is_templated(name) or is_xcom(name) for name in names):
        outlets.append(artifact_alias(task.dag_id, task.task_id))
    inlets = [artifact_asset(known) for ref in inputs if (known := static_name(ref)) is not None]
    task.inlets = add_assets(task.inlets, inlets)
    task.outlets = add_assets(task.outlets, outlets)


def sanitize_uri(uri: SplitResult) -> SplitResult:
    """Normalise an ``artiflow://<name>`` URI; Airflow calls this for every ``artiflow`` Asset.

    Airflow has already lower-cased the scheme, dropped the fragment and turned an empty path
    into ``/``; artifact names are case-sensitive, so the name is kept as written.

    :param uri: the split URI.
    :raises artiflow.errors.InvalidName: (a ``ValueError``) the URI does not name exactly one
        valid artifact.
    """
    query = f"?{uri.query}" if uri.query else ""
    name_from_uri(f"{uri.scheme}://{uri.netloc}{uri.path.rstrip('/')}{query}")
    return uri._replace(path="", query="", fragment="")


def create_asset(*, name: str, extra: dict[str, Any] | None = None, **_: Any) -> Asset:
    """Asset factory for the ``artiflow`` scheme (used by the hook lineage collector).

    :param name: the artifact name.
    :param extra: the asset extra, e.g. ``{"version": "v3", "digest": ..., "type": ...}``.
    """
    return artifact_asset(name, extra=extra)


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

    extra = asset.extra or {}
    return Dataset(
        namespace=str(extra.get("namespace") or OPENLINEAGE_NAMESPACE),
        name=name_from_uri(asset.uri),
        facets=openlineage_facets(extra),
    )


def openlineage_facets(extra: dict[str, Any]) -> dict[str, Any]:
    """OpenLineage dataset facets for an artifact version described by an asset ``extra``
    (all an Asset carries; where the version record is known, :mod:`artiflow.openlineage`
    builds the full datasets)."""
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
