"""From a command line to a `SearchRequest`: each option's destination is the request's field of the
same name, so this module only maps flags; every check lives in `search.plan.spec.resolve`."""

from __future__ import annotations

import argparse
import dataclasses

from search.plan.request import SearchRequest


def request_from_args(args: argparse.Namespace) -> SearchRequest:
    """The request the parsed options make."""
    return SearchRequest(**{f.name: getattr(args, f.name) for f in dataclasses.fields(SearchRequest)})
