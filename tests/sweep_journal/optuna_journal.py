"""The real Optuna on a kiln sweep journal, for tests/sweep_journal.

    optuna_journal.py view PATH STUDY          print the study as Optuna loads it (JSON)
    optuna_journal.py optimize PATH STUDY      write a study with study.optimize
    optuna_journal.py ask-tell PATH STUDY N    N ask/suggest/report/tell rounds (4 ops each),
                                               2 ms apart
    optuna_journal.py pop PATH STUDY           run one trial: Optuna pops a waiting trial

Every command prints one JSON line last. Times are read in UTC (the test sets TZ).
Exits 77 when optuna cannot be imported.
"""

import json
import math
import sys
import time

try:
    import optuna
    from optuna.distributions import distribution_to_json
except ImportError as error:  # the test reports this as a failure: install-deps puts optuna there
    print(f"cannot import optuna: {error}")
    sys.exit(77)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def storage(path):
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path))


def time_text(value):
    return None if value is None else value.isoformat(timespec="microseconds")


def number_text(value):
    # JSON has no NaN: the test compares these as strings.
    return "nan" if isinstance(value, float) and math.isnan(value) else value


def view(path, name):
    study = optuna.load_study(study_name=name, storage=storage(path))
    trials = []
    for trial in study.get_trials(deepcopy=False):
        trials.append(
            {
                "number": trial.number,
                "state": trial.state.name,
                "params": trial.params,
                "distributions": {
                    key: json.loads(distribution_to_json(d)) for key, d in trial.distributions.items()
                },
                "value": trial.value,
                "intermediate": {
                    str(step): number_text(v) for step, v in trial.intermediate_values.items()
                },
                "user_attrs": trial.user_attrs,
                "system_attrs": trial.system_attrs,
                "datetime_start": time_text(trial.datetime_start),
                "datetime_complete": time_text(trial.datetime_complete),
            }
        )
    return {
        "optuna": optuna.__version__,
        "direction": study.direction.name,
        "user_attrs": study.user_attrs,
        # Study.system_attrs is gone in Optuna 5; the storage still has them.
        "system_attrs": study._storage.get_study_system_attrs(study._study_id),
        "trials": trials,
    }


def objective(trial):
    x = trial.suggest_float("x", 0.01, 10.0, log=True)
    n = trial.suggest_int("n", 1, 5)
    kind = trial.suggest_categorical("kind", ["a", "b", "[64, 32]"])
    trial.set_user_attr("kind_length", len(kind))
    for step in range(3):
        trial.report(x * n + step, step)
        if trial.number % 3 == 2 and step == 1:
            raise optuna.TrialPruned()
    if trial.number == 4:
        raise ValueError("trial 4 fails on purpose")
    return x * n


def optimize(path, name):
    study = optuna.create_study(
        study_name=name,
        storage=storage(path),
        direction="minimize",
        sampler=optuna.samplers.RandomSampler(seed=7),
    )
    study.set_user_attr("owner", "optuna")
    study.enqueue_trial({"x": 0.5, "n": 3, "kind": "b"}, user_attrs={"enqueued": True})
    study.optimize(objective, n_trials=8, catch=(ValueError,))
    return view(path, name)


def ask_tell(path, name, rounds):
    study = optuna.load_study(
        study_name=name, storage=storage(path), sampler=optuna.samplers.RandomSampler(seed=3)
    )
    for _ in range(rounds):
        trial = study.ask()
        x = trial.suggest_float("x", 0.0, 1.0)
        trial.report(x, 0)
        study.tell(trial, x)
        # A pause between rounds, as an objective would make: the symlink lock is
        # not fair, and a writer that retakes it at once can starve the others.
        time.sleep(0.002)
    return {"rounds": rounds}


def pop(path, name):
    study = optuna.load_study(study_name=name, storage=storage(path))

    def use_fixed(trial):
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        return lr * 10

    study.optimize(use_fixed, n_trials=1)
    return view(path, name)


def main():
    command, path, name = sys.argv[1:4]
    if command == "view":
        result = view(path, name)
    elif command == "optimize":
        result = optimize(path, name)
    elif command == "ask-tell":
        result = ask_tell(path, name, int(sys.argv[4]))
    elif command == "pop":
        result = pop(path, name)
    else:
        raise SystemExit(f"unknown command {command}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
