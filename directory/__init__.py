from pathlib import Path

from directory.compiled import refuse_stale

refuse_stale(Path(__file__).parent)
