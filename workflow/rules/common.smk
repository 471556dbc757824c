# Shared helpers for the rules.


# Small aggregation rules run on the submit host, never as cluster jobs (--executor slurm).
localrules:
    accuracy_table,
    tables,
    figures,


def calibration_input(wc):
    """The calibration file a training run reads, if its c_ref is calibrated."""
    source = {**config["laser"], **config["methods"][wc.method]}["c_ref"]["source"]
    return f"results/calibration/{wc.model}.json" if source == "calibrated" else []
