"""What a run writes and reads back: the run directory's layout and its checks (`rundir`), the
trial records of `trials.jsonl` (`records`), `summary.json` (`summary`), the winners' model cards
(`cards`) and the offline report (`report`, drawn by `report_data`, `report_html`,
`report_plotly` and `report_png`).

May import: the library and `search.plan`; not `search.run` or `search.cli` (a report is drawn
from files, without Ray).
"""
