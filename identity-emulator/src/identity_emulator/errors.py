"""Errors shaped as Entra ID returns them, so clients exercise their real error handling."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from fastapi.responses import JSONResponse

# The AADSTS codes the emulator uses, with Entra's own wording (shortened where it names internals).
MESSAGES: dict[int, str] = {
    900144: "The request body must contain the following parameter: '{param}'.",
    900023: "Specified tenant identifier '{tenant}' is neither a valid DNS name, nor a valid external domain.",
    90002: "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing "
    "into the correct cloud.",
    50059: "No tenant-identifying information found in either the request or implied by any provided credentials.",
    700016: "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen "
    "if the application has not been installed by the administrator of the tenant or consented to by any "
    "user in the tenant.",
    7000218: "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    7000215: "Invalid client secret provided. Ensure the secret being sent in the request is the client secret "
    "value, not the client secret ID, for a secret added to app '{client_id}'.",
    700025: "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
    700027: "The certificate with identifier used to sign the client assertion is not registered on application.",
    700023: "Client assertion audience claim does not match Realm issuer. Review the documentation at "
    "https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
    700024: "Client assertion is not within its valid time range.",
    700021: "Client assertion application identifier doesn't match 'client_id' parameter.",
    70021: "No matching federated identity record found for presented assertion. Assertion Issuer: '{iss}'. "
    "Assertion Subject: '{sub}'. Assertion Audience: '{aud}'.",
    50027: "JWT token is invalid or malformed.",
    700212: "No matching federated identity record found for presented assertion audience '{aud}'.",
    70003: "The app requested an unsupported grant type '{grant_type}'.",
    70000: "The request was denied because one or more grants are invalid, expired, or revoked.",
    70008: "The provided authorization code or refresh token has expired due to inactivity. Send a new "
    "interactive authorization request for this user and resource.",
    54005: "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an "
    "existing refresh token.",
    501481: "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
    9002325: "Proof Key for Code Exchange is required: send code_challenge with code_challenge_method=S256.",
    50011: "The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs "
    "configured for the application '{client_id}'. Make sure the redirect URI sent in the request matches "
    "one added to your application.",
    50126: "Error validating credentials due to invalid username or password.",
    50034: "The user account {upn} does not exist in the {tenant} directory. To sign into this application, "
    "the account must be added to the directory.",
    50020: "User account '{upn}' from identity provider does not exist in tenant '{tenant}' and cannot access "
    "the application '{client_id}' in that tenant.",
    50057: "The user account is disabled.",
    50053: "{locked}, because of too many sign-ins with an incorrect user ID or password. Try again in "
    "{seconds} seconds.",
    90055: "There are too many incoming requests. Try again in {seconds} seconds.",
    50076: "Due to a configuration change made by your administrator, or because you moved to a new location, "
    "you must use multi-factor authentication to access this resource.",
    50173: "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user "
    "might have changed or reset their password. The grant was issued on '{issued}' and the TokensValidFrom "
    "date (before which tokens are not valid) for this user is '{valid_from}'.",
    50105: "Your administrator has configured the application {app} ('{client_id}') to block users unless they "
    "are specifically granted ('assigned') access to the application. The signed in user '{upn}' is blocked "
    "because they are not a direct member of a group with access, nor had access directly assigned by an "
    "administrator. Please contact your administrator to assign access to this application.",
    501051: "Application '{client_id}'({app}) is not assigned to a role for the application "
    "'{resource_id}'({resource}).",
    65001: "The user or administrator has not consented to use the application with ID '{client_id}' named "
    "'{app}'. Send an interactive authorization request for this user and resource.",
    90094: "The grant requires admin permission: '{scopes}' on '{app}' can only be granted by an administrator "
    "of the tenant.",
    65004: "User declined to consent to access the app.",
    70011: "The provided request must include a 'scope' input parameter. The provided value for the input "
    "parameter 'scope' is not valid. The scope {scope} is not valid.",
    28000: "Provided value for the input parameter scope is not valid because it contains more than one "
    "resource. Scope {scope} is not valid.",
    500011: "The resource principal named {resource} was not found in the tenant named {tenant}. This can "
    "happen if the application has not been installed by the administrator of the tenant or consented to by "
    "any user in the tenant.",
    650053: "The application '{app}' asked for scope '{scope}' that doesn't exist on the resource '{resource}'.",
    1002012: "The provided value for scope {scope} is not valid. Client credential flows must have a scope "
    "value with /.default suffixed to the resource identifier (application ID URI).",
    500131: "Assertion audience does not match the Client app presenting the assertion. The audience in the "
    "assertion was '{aud}' and the expected audience is '{client_id}'.",
    500133: "Assertion is not within its valid time range.",
    50013: "Assertion failed signature validation.",
    50058: "A silent sign-in request was sent but no user is signed in.",
    50089: "Authentication failed due to flow token expired.",
    70016: "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
    70020: "The provided value for the input parameter 'device_code' is not valid. This device code has expired.",
    700082: "The refresh token has expired due to inactivity.",
    9002313: "Invalid request. Request is malformed or invalid.",
    7000112: "Application '{client_id}'({app}) is disabled.",
    700054: "response_type 'id_token' is not enabled for the application.",
    900971: "No reply address provided.",
    50196: "The server terminated an operation because it encountered a client request loop.",
    5000224: "On-behalf-of flow needs a user: an application-only token cannot be exchanged for a token "
    "on a user's behalf.",
    7000114: "Application '{client_id}' is not allowed to make application on-behalf-of calls.",
}


class EntraError(Exception):
    """An OAuth error answered in Entra's JSON shape."""

    def __init__(
        self,
        error: str,
        code: int,
        status: int = 400,
        suberror: str | None = None,
        claims: str | None = None,
        **fmt: Any,
    ):
        self.error = error
        self.code = code
        self.status = status
        self.suberror = suberror
        # A claims request the client must pass on to get what it asked for (CAE, step-up).
        self.claims = claims
        # For a 429: when to ask again (Retry-After).
        self.retry_after = fmt.get("seconds") if status == 429 else None
        try:
            text = MESSAGES[code].format(**fmt)
        except (KeyError, IndexError):
            text = MESSAGES.get(code, "Request failed.")
        self.description = f"AADSTS{code}: {text}"
        super().__init__(self.description)

    def body(self) -> dict[str, Any]:
        trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
        now = dt.datetime.now(dt.UTC)
        body: dict[str, Any] = {
            "error": self.error,
            "error_description": f"{self.description}\r\nTrace ID: {trace_id}\r\nCorrelation ID: "
            f"{correlation_id}\r\nTimestamp: {now:%Y-%m-%d %H:%M:%SZ}",
            "error_codes": [self.code],
            "timestamp": f"{now:%Y-%m-%d %H:%M:%SZ}",
            "trace_id": trace_id,
            "correlation_id": correlation_id,
        }
        if self.suberror:
            body["suberror"] = self.suberror
        if self.claims:
            body["claims"] = self.claims
        if self.code == 70021 or self.code == 700212:
            body["error_uri"] = "https://login.microsoftonline.com/error?code=" + str(self.code)
        return body

    def response(self) -> JSONResponse:
        headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        if self.status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="identity-emulator"'
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        return JSONResponse(self.body(), status_code=self.status, headers=headers)
