from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

import artiflow as af


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False)
def artiflow_quickstart():
    @task.artifact(outputs={"numbers": "dataset"})
    def produce(numbers: af.Artifact) -> None:
        with numbers.new_file("numbers.txt") as f:
            f.write("\n".join(str(i) for i in range(10)))

    @task.artifact(inputs={"numbers": "numbers:latest"}, outputs={"total": "report"})
    def summarise(numbers: af.Artifact, total: af.Artifact) -> None:
        values = (numbers.download() / "numbers.txt").read_text().split()
        with total.new_file("total.txt") as f:
            f.write(str(sum(int(v) for v in values)))

    summarise(numbers=produce())


artiflow_quickstart()
