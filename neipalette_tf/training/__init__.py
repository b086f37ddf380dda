"""Training workflows: the run configuration (`config`), the train loop (`loop`), one training
run from config to run folder (`run`), resume backups, data-parallel strategies, the classic
baselines' runs and the input-pipeline benchmark."""
