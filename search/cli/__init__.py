"""The command line of `search.py` and `minitron-search`: the options (`options`), how a command
becomes settings and starts or resumes a run (`main`), the checks of a name and an output folder
(`checks`) and the dry run's tables (`dryrun`).

May import: everything (`search.run`, `search.outputs`, `search.plan` and the library); nothing
imports it but `search.py` and the console script.
"""
