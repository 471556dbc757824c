# Shared helpers for the rules.


def script_env():
    """Environment for jobs: wandb stays offline unless the user opted in."""
    return {"WANDB_MODE": os.environ.get("WANDB_MODE", "offline")}
