"""The search: everything Ray Tune and Optuna, in five packages that import one way
(`tests/test_layering.py`):

    cli      the command line: options mapped onto a request, the dry run's tables  -> api, and below
    api      the Python API: run, resume and plan a search; prune and distill        -> run, outputs, plan
    run      a run's execution on Ray: the pipeline of stages, trials, latency,
             winners, benchmarks                                                      -> outputs, plan
    outputs  what a run writes and reads back: run directory, records, summary, report -> plan
    plan     what a run will do, decided before anything runs: the request resolved
             into a spec (settings, space, candidates, probe and memory plans)       -> (the library only)
"""
