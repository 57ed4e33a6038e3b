"""The REST APIs' request parsers (settings REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"], and
the views that name their own): DRF's, plus the input-cleaning rule of core.cleaning
applied once to everything they parse, so that no view sees a NUL, a lone surrogate or a
body nested a thousand levels deep. A refusal is an InvalidInput naming the field path,
which each API's exception handler answers in its own shape."""

from rest_framework import parsers

from .cleaning import MAX_DEPTH, check_data, check_querydict, check_text
from .errors import InvalidInput


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            # json.load recurses once per level: about 1,000 levels exhaust the stack.
            raise InvalidInput(
                f"The JSON body is nested too deeply: at most {MAX_DEPTH} levels of objects and lists.", code="too_deep"
            ) from None
        check_data(data)
        return data


class FormParser(parsers.FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        check_querydict(data)
        return data


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parsed = super().parse(stream, media_type, parser_context)
        check_querydict(parsed.data)
        for field, upload in parsed.files.items():
            check_text(upload.name or "", field, subject=f"The file name of {field}")
        return parsed
