"""POST /api/v1/verify: does a video carry a Framecast mark? (Same answer as /verify.)"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import Perm, is_staff_member, require
from accounts.selectors import request_actor
from core.api_schema import errors

from .provenance import VerifyError, max_upload_bytes, too_large_message, verification_json, verify_share_link, verify_upload


class VerifyApi(APIView):
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(
        operation_id="verify_video",
        request={
            "multipart/form-data": inline_serializer("VerifyUpload", {"file": serializers.FileField()}),
            "application/json": inline_serializer("VerifyLink", {"share_url": serializers.CharField()}),
        },
        responses={200: OpenApiTypes.OBJECT, **errors(400, 401, 404, 413, 415)},
        description=(
            "Upload a video as `file` (multipart), or give a Framecast `share_url`. Answers whether it carries a "
            "Framecast watermark (`marked`, `confidence` 0-1) and its C2PA content credentials, if any. Staff signed "
            "in (never an API key) also get the `job` (id, team, time); a video of the caller's own team gets its "
            "`job` id."
        ),
    )
    def post(self, request):
        actor = request_actor(request)
        require(actor, Perm.VIEW)
        # Refuse an oversized body before reading it.
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        if declared > max_upload_bytes() + 64 * 1024:
            raise VerifyError(too_large_message(declared), status=413, code="file_too_large")
        upload = request.FILES.get("file")
        share_url = request.data.get("share_url") if hasattr(request.data, "get") else None
        # A VerifyError (a core.errors.Refusal) is answered in the API's error shape.
        if upload is not None:
            result = verify_upload(upload)
        elif isinstance(share_url, str) and share_url.strip():
            result = verify_share_link(share_url)
        else:
            raise VerifyError("Upload a video as `file` (multipart/form-data), or give a Framecast `share_url`.")
        staff = is_staff_member(request.user, via_api_key=actor.api_key is not None)
        return Response(verification_json(result, staff=staff, team=actor.team))
