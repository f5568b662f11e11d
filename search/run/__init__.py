"""A run's execution on Ray: the pipeline of stages (`runner`, `stages`), Ray itself
(`ray_runtime`), the Tune experiment and its trials with the Optuna searcher (`tuning`, `trial`,
`sampling`, `samplers`, `progress`), the latency stage (`latency`), which candidates win
(`selection`), retraining them (`winners`, `winner_job`, `train_workers`), benchmarks
(`benchmarks`) and the time budget (`timebudget`).

May import: the library, `search.plan` and `search.outputs`; not `search.cli`.
"""
