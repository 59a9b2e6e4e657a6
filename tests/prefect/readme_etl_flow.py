# etl_flow.py
from prefect import flow

import artiflow as af
from artiflow.prefect import artifact_task


@artifact_task(outputs={"raw": {"type": "dataset", "name": "raw-data"}})
def extract(raw: af.Artifact, rows: int = 100) -> None:
    with raw.new_file("numbers.csv") as f:
        f.write("n\n" + "\n".join(str(i) for i in range(rows)) + "\n")


@artifact_task(
    inputs={"raw": "raw-data:latest"},
    outputs={"clean": {"type": "dataset", "name": "clean-data", "aliases": ["staging"]}},
)
def transform(raw: af.Artifact, clean: af.Artifact) -> None:
    numbers = (raw.download() / "numbers.csv").read_text().split()[1:]
    with clean.new_file("even.csv") as f:
        f.write("n\n" + "\n".join(n for n in numbers if int(n) % 2 == 0) + "\n")


@flow
def etl(rows: int = 100) -> str:
    raw = extract(rows=rows)  # "raw-data:v0"
    return transform(raw=raw)  # uses exactly that version; returns "clean-data:v0"


if __name__ == "__main__":
    print(etl())
