"""The API's JSON parser: strict JSON (humanbeauty/strictjson.py), refused with a 400 before any
view sees it, for every JSON endpoint at once."""

from __future__ import annotations

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from humanbeauty.strictjson import loads_strict


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return loads_strict(stream.read())
        except ValueError as exc:
            raise ParseError(f"JSON parse error: {exc}") from None
