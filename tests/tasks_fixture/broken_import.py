"""A task module that raises at import (tests the registry's error path)."""

raise RuntimeError("this module is broken on purpose")
