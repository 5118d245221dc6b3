"""E-mail over SMTP, with the user's SMTP username and password."""

from __future__ import annotations

import asyncio
from typing import Any

from blockpilot.blocks.base import Block, BlockCategory, BlockEffect, BlockOutput
from blockpilot.blocks.schema import BlockSchemaInput, BlockSchemaOutput, Integer, SchemaField
from blockpilot.credentials.fields import CredentialsField
from blockpilot.credentials.models import CredentialsMetaInput, UserPasswordCredentials
from blockpilot.credentials.servers import ServerAddress
from blockpilot.errors import BlockExecutionError, InvalidInputError
from blockpilot.executions.context import ExecutionContext

SMTP_TIMEOUT_SECONDS = 30
DEFAULT_SMTP_PORT = 587


def _send_mail(
    address: str,
    server_name: str,
    port: int,
    creds: UserPasswordCredentials,
    to: str,
    subject: str,
    body: str,
    *,
    allow_plaintext: bool,
) -> None:
    """Deliver one message through *address* (already vetted), authenticating as *creds*.

    TLS certificates are always verified against *server_name*. Without TLS the password is
    sent only when *allow_plaintext* (an operator-allowed host such as a local relay);
    otherwise a server that offers no STARTTLS (or an attacker who stripped it) gets nothing.
    """
    import smtplib  # noqa: PLC0415 - provider libraries load only when a block runs
    import ssl
    from email.message import EmailMessage

    class _SMTPSSLToName(smtplib.SMTP_SSL):
        # Connect to the vetted address, but send SNI and check the certificate for the name.
        def _get_socket(self, host: str, port: int, timeout: float) -> Any:
            self._host = server_name
            return super()._get_socket(host, port, timeout)  # type: ignore[misc]

    username = creds.username.get_secret_value()
    message = EmailMessage()
    message["From"] = username if "@" in username else f"{username}@{server_name}"
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    # smtplib's own default context verifies nothing; always use a verifying one.
    context = ssl.create_default_context()
    implicit_tls = port == 465
    smtp = (
        _SMTPSSLToName(timeout=SMTP_TIMEOUT_SECONDS, context=context)
        if implicit_tls
        else smtplib.SMTP(timeout=SMTP_TIMEOUT_SECONDS)
    )
    with smtp:
        smtp.connect(address, port)  # the address the guard checked, not a fresh lookup
        smtp._host = server_name  # type: ignore[attr-defined]  # TLS certificate checks use the name
        smtp.ehlo()
        if not implicit_tls:
            if smtp.has_extn("starttls"):
                smtp.starttls(context=context)
                smtp.ehlo()
            elif not allow_plaintext:
                raise BlockExecutionError(
                    f"The SMTP server {server_name} does not offer STARTTLS, so the password "
                    "would be sent unencrypted; use port 465 or a server that supports STARTTLS"
                )
        smtp.login(username, creds.password.get_secret_value())
        smtp.send_message(message)


def _server(input_data: Any, credentials: UserPasswordCredentials) -> ServerAddress | str:
    """The server to authenticate to, or why there is none.

    Matching hands over only a credential bound to the server the run names; this check
    holds even if that ever broke: the password goes to the credential's server or nowhere.
    """
    bound = credentials.server
    if bound is None:
        return (
            "This SMTP credential names no server yet; confirm its host with "
            "`blockpilot credentials set-host ID HOST[:PORT]` (nothing was sent)"
        )
    try:
        requested = ServerAddress.of(input_data.smtp_server or bound.host, input_data.smtp_port)
    except InvalidInputError as exc:
        return f"smtp_server: {exc.message}"
    if not bound.admits(requested):
        return f"The SMTP credential is for {bound}, not {requested}; nothing was sent"
    return ServerAddress(requested.host, requested.port or bound.port)


class SendEmailBlock(Block):
    id = "4335878a-394e-4e67-adf2-919877ff49ae"
    effect = BlockEffect.WRITE
    description = "Sends an e-mail through an SMTP server with the user's SMTP account."
    categories = frozenset({BlockCategory.OUTPUT, BlockCategory.COMMUNICATION})

    class Input(BlockSchemaInput):
        to_email: str = SchemaField(
            description="Recipient address",
            placeholder="recipient@example.com",
            max_length=320,
            json_schema_extra={"format": "email"},
        )
        subject: str = SchemaField(description="Subject of the e-mail", max_length=998)
        body: str = SchemaField(description="Text of the e-mail", max_length=1_000_000)
        smtp_server: str | None = SchemaField(
            default=None,
            description="SMTP server host name; empty: the server the SMTP credential is for",
            max_length=253,
        )
        smtp_port: Integer | None = SchemaField(
            default=None,
            ge=1,
            le=65535,
            description="SMTP server port; empty: the credential's port, else 587",
        )
        # Only a credential bound to the server the run names fits (docs/security.md).
        credentials: CredentialsMetaInput = CredentialsField(
            providers=["smtp"],
            supported_types=["user_password"],
            server_input="smtp_server",
            port_input="smtp_port",
            description="SMTP username and password, bound to their server",
        )

    class Output(BlockSchemaOutput):
        status: str = SchemaField(description="Delivery status")

    async def run(
        self,
        input_data: Input,
        *,
        credentials: UserPasswordCredentials,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> BlockOutput:
        to = input_data.to_email.strip()
        if (
            to.count("@") != 1
            or any(ch in to for ch in "\r\n,;<> ")
            or to.startswith("@")
            or to.endswith("@")
        ):
            yield "error", "to_email must be a single e-mail address such as someone@example.com"
            return
        if any(ch in input_data.subject for ch in "\r\n"):
            yield "error", "subject must be a single line"
            return
        server = _server(input_data, credentials)
        if isinstance(server, str):
            yield "error", server
            return
        host, port = server.host, server.port or DEFAULT_SMTP_PORT
        http = execution_context.http
        address = await http.checked_address(host, port)
        allow_plaintext = http.policy.is_exempt(host, port)
        import smtplib  # noqa: PLC0415
        import ssl

        try:
            await asyncio.to_thread(
                _send_mail,
                address,
                host,
                port,
                credentials,
                to,
                input_data.subject,
                input_data.body,
                allow_plaintext=allow_plaintext,
            )
        except smtplib.SMTPAuthenticationError:
            yield "error", "The SMTP server rejected the username or password"
            return
        except ssl.SSLCertVerificationError as exc:
            yield (
                "error",
                f"The SMTP server's TLS certificate could not be verified ({exc.verify_message}); "
                "nothing was sent",
            )
            return
        except (smtplib.SMTPException, OSError) as exc:
            yield "error", f"Could not send the e-mail: {type(exc).__name__}: {exc}"
            return
        yield "status", "Email sent successfully"
