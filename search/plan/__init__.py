"""What a run will do, decided before anything runs: the settings saved as `config.json`
(`settings`), the search spaces (`space`) and the feasible candidates at a budget (`candidates`),
a budget range's strata and hand shapes (`front`) and the Pareto rule (`pareto`), the probe
schedule the overhead pays for (`probe_plan`), each candidate's memory (`memory_plan`) and what the
corpus must hold (`corpus`).

May import: the library (`minitron`) only; nothing else of `search`, and neither Ray nor Optuna
(a plan is made, and checked, before Ray starts).
"""
