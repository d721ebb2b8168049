"""Send over SMTP (smtplib): verified TLS, one reused connection per transport, a result per recipient.

`digest send --connections N` opens N of these, each sent from its own thread (sender.SendLoop).
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from digest.config import load_section, secret
from digest.errors import (
    ConfigError,
    DigestError,
    PermanentTransportError,
    TransientTransportError,
    TransportAuthError,
)
from digest.outgoing import OutgoingMessage
from digest.sections import setting
from digest.transports.base import SendResult, Status, Transport
from digest.transports.smtp_session import (
    ConnectionLost,
    FastDataSMTP,
    FastDataSMTP_SSL,
    close_quietly,
    envelope_address,
    reply_text,
    should_suppress,
    split_mime,
)

if TYPE_CHECKING:  # pragma: no cover
    from digest.config import Settings

SECURITY_PORTS = {"starttls": 587, "tls": 465, "none": 25}


@dataclass
class SMTPSettings:
    """The [smtp] section of digest.toml."""

    host: str = setting("localhost", "SMTP server name (use the name on its TLS certificate).")
    port: int | None = setting(None, "Server port; default by `security`: 587 for starttls, 465 for tls, 25 for none.")
    security: str = setting("starttls", "`starttls`: plain connect, then STARTTLS, required (not opportunistic); "
                            "`tls`: TLS from the first byte (port 465); `none`: no encryption (a relay on this "
                            "machine or a test server).")
    username: str | None = setting(None, "Log in with this user (AUTH); no login when unset.")
    password_env: str = setting("DIGEST_SMTP_PASSWORD", "Name of the environment variable holding the password.")
    timeout: float = setting(30.0, "Seconds allowed for connecting and for every reply.")
    allow_insecure_auth: bool = setting(False, "Allow `username` with `security = \"none\"` (password sent "
                                        "unencrypted): only for a trusted relay on this machine.")
    ca_file: str | None = setting(None, "PEM file of the CA(s) to trust instead of the system's CA store (a "
                                  "private CA or a self-signed certificate); relative to digest.toml's folder.")
    local_hostname: str | None = setting(None, "Name sent in EHLO (default: this machine's fully qualified name).")


class _Dead(Exception):
    """A connection could not be (re-)established; its worker stops taking messages."""

    def __init__(self, error: DigestError):
        super().__init__(str(error))
        self.error = error


class _Connection:
    """One SMTP session, opened on demand and dropped on any connection-level failure."""

    def __init__(self, transport: "SMTPTransport"):
        self.transport = transport
        self.smtp: smtplib.SMTP | None = None

    def ensure(self) -> smtplib.SMTP:
        if self.smtp is None:
            self.smtp = self.transport._connect()
        return self.smtp

    def drop(self) -> None:
        smtp, self.smtp = self.smtp, None
        if smtp is not None:
            try:
                smtp.close()
            except Exception:  # noqa: BLE001 - closing a dead socket must not hide the real error
                pass

    def quit(self) -> None:
        smtp, self.smtp = self.smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except Exception:  # noqa: BLE001 - the server may already have gone; nothing left to do
            try:
                smtp.close()
            except Exception:  # noqa: BLE001
                pass


class SMTPTransport(Transport):
    """Deliver each message in its own SMTP transaction (one recipient), over reused connections."""

    name = "smtp"
    needs_mime = True
    max_batch = 100
    supports_connections = True
    settings_class = SMTPSettings

    def __init__(self, settings: "Settings", *, connections: int = 1):
        super().__init__(settings, connections=connections)
        where = settings.where("smtp")
        cfg = load_section(SMTPSettings, settings.transport_section("smtp"), where)
        if cfg.security not in SECURITY_PORTS:
            raise ConfigError(f"{where} security = {cfg.security!r}: expected 'starttls', 'tls' or 'none'.",
                              "use 'starttls' for port 587, 'tls' for port 465, 'none' only for a local relay")
        if cfg.port is None:
            cfg.port = SECURITY_PORTS[cfg.security]
        if not 0 < cfg.port < 65536:
            raise ConfigError(f"{where} port = {cfg.port}: expected 1–65535.")
        if cfg.timeout <= 0:
            raise ConfigError(f"{where} timeout = {cfg.timeout}: expected a number of seconds > 0.")
        if connections != 1:  # parallel connections are parallel transports (sendjob.make_transports)
            raise ValueError(f"an SMTPTransport is one connection, not {connections}")
        if cfg.username and cfg.security == "none" and not cfg.allow_insecure_auth:
            raise ConfigError(
                f"{where}: username is set but security = 'none' would send the password unencrypted "
                f"to {cfg.host}:{cfg.port}.",
                "use security = 'starttls' (port 587) or 'tls' (port 465); set allow_insecure_auth = true "
                "only for a trusted relay on this machine")
        self.ca_path: Path | None = None
        if cfg.ca_file:
            ca = Path(cfg.ca_file).expanduser()
            self.ca_path = ca if ca.is_absolute() else settings.root / ca
            if not self.ca_path.is_file():
                raise ConfigError(f"{where} ca_file = {cfg.ca_file!r}: {self.ca_path} does not exist.",
                                  "point it at the PEM file of the CA that signed the server's certificate")
        self.cfg = cfg
        self.address = f"{cfg.host}:{cfg.port}"
        self._password: str | None = None
        self._local_name: str | None = None
        self._context: ssl.SSLContext | None = None
        self._conn: _Connection | None = None

    def describe(self) -> str:
        """'smtp://host:port (security)'."""
        return f"smtp://{self.address} ({self.cfg.security})"

    # -- connecting -------------------------------------------------------------------------------

    def _tls_context(self) -> ssl.SSLContext:
        # Certificate and host name are always verified; ca_file only changes whom we trust.
        if self.ca_path is None:
            return ssl.create_default_context()
        try:
            return ssl.create_default_context(cafile=str(self.ca_path))
        except ssl.SSLError as exc:
            raise ConfigError(f"{self.settings.where('smtp')} ca_file = {self.cfg.ca_file!r}: "
                              f"{self.ca_path} is not a PEM certificate file ({exc.reason or exc}).",
                              "point it at the PEM file of the CA that signed the server's certificate") from exc

    def open(self) -> None:
        """Read the password, then connect (and log in) so that errors show before anything is sent."""
        if self._conn is not None:
            return
        if self.cfg.username:
            self._password = secret(self.cfg.password_env,
                                    purpose=f"SMTP password for {self.cfg.username} at {self.address}")
        if self.cfg.security != "none":
            self._context = self._tls_context()
        conn = _Connection(self)
        try:
            conn.ensure()
        except BaseException:
            conn.quit()
            raise
        self._conn = conn

    def close(self) -> None:
        """QUIT the connection. Safe to call more than once."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.quit()

    def _failure(self, exc: BaseException) -> str:
        if isinstance(exc, (socket.timeout, TimeoutError)) or "timed out" in str(exc):
            return f"no reply within {self.cfg.timeout:g} s"
        if isinstance(exc, smtplib.SMTPResponseException):
            return f"{exc.smtp_code} {reply_text(exc.smtp_error)}"
        return str(exc) or type(exc).__name__

    def _connect(self) -> smtplib.SMTP:
        """A new, greeted, TLS-protected (as configured) and logged-in session; raises DigestErrors."""
        cfg = self.cfg
        smtp: smtplib.SMTP | None = None
        try:
            # smtplib looks up this machine's FQDN (DNS) on every connect unless told: do it once.
            name = cfg.local_hostname or self._local_name
            if cfg.security == "tls":
                smtp = FastDataSMTP_SSL(cfg.host, cfg.port, local_hostname=name, timeout=cfg.timeout,
                                 context=self._context)
            else:
                smtp = FastDataSMTP(cfg.host, cfg.port, local_hostname=name, timeout=cfg.timeout)
            self._local_name = smtp.local_hostname
            smtp.ehlo()
            if cfg.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise PermanentTransportError(
                        f"SMTP server {self.address} does not offer STARTTLS.",
                        "use security = 'tls' if it speaks TLS from the start (usually port 465); "
                        "security = 'none' only for a relay on this machine")
                smtp.starttls(context=self._context)
                smtp.ehlo()
            if cfg.username:
                self._login(smtp)
            return smtp
        except DigestError:
            close_quietly(smtp)
            raise
        except (ssl.SSLError, smtplib.SMTPException, OSError) as exc:
            close_quietly(smtp)
            raise self._session_error(exc) from exc

    def _session_error(self, exc: BaseException) -> DigestError:
        """What a failure while opening a session means, and what to do about it."""
        cfg = self.cfg
        if isinstance(exc, ssl.SSLCertVerificationError):
            detail = exc.verify_message or str(exc)
            if "hostname" in detail.lower() or "ip address mismatch" in detail.lower():
                hint = (f"set [smtp] host to a name on the server's certificate (not '{cfg.host}'); "
                        "verification cannot be switched off")
            else:
                hint = ("if the server uses a private CA or a self-signed certificate, set [smtp] ca_file "
                        "to that CA's PEM file; verification cannot be switched off")
            return PermanentTransportError(f"SMTP server {self.address}: TLS certificate not trusted ({detail}).",
                                           hint)
        if isinstance(exc, ssl.SSLError):
            return PermanentTransportError(
                f"SMTP server {self.address}: TLS handshake failed ({exc.reason or exc}).",
                "security = 'tls' is for ports that speak TLS at once (465); port 587 uses 'starttls'")
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return PermanentTransportError(
                f"SMTP server {self.address} does not offer AUTH ({exc}).",
                "check host and port (submission is usually 587); some servers offer AUTH only after TLS")
        if isinstance(exc, smtplib.SMTPResponseException):  # e.g. 421/554 greeting, refused EHLO/STARTTLS
            cls = TransientTransportError if 400 <= exc.smtp_code < 500 else PermanentTransportError
            return cls(f"SMTP server {self.address} refused the session: {self._failure(exc)}.",
                       "check host and port; try again later if the reply is 4xx")
        return TransientTransportError(  # SMTPServerDisconnected, refused connection, timeout
            f"cannot talk to SMTP server {self.address}: {self._failure(exc)}.",
            f"check that the server runs and that host/port are right; timeout is {cfg.timeout:g} s")

    def _login(self, smtp: smtplib.SMTP) -> None:
        assert self._password is not None
        try:
            smtp.login(self.cfg.username, self._password)
        except smtplib.SMTPAuthenticationError as exc:
            if 400 <= exc.smtp_code < 500:
                raise TransientTransportError(
                    f"SMTP server {self.address} could not check the credentials now: {self._failure(exc)}.",
                    "try again later") from exc
            raise TransportAuthError(
                f"SMTP server {self.address} refused the login of user '{self.cfg.username}': "
                f"{self._failure(exc)}.",
                f"check [smtp] username and the password in ${self.cfg.password_env} "
                "(Amazon SES wants its SMTP credentials, not IAM access keys)") from exc
        except smtplib.SMTPNotSupportedError:
            raise
        except smtplib.SMTPResponseException:
            raise
        except smtplib.SMTPServerDisconnected:
            raise
        except smtplib.SMTPException as exc:  # "No suitable authentication method found"
            raise PermanentTransportError(
                f"SMTP server {self.address}: no AUTH mechanism in common ({exc}).",
                "digest (smtplib) speaks CRAM-MD5, PLAIN and LOGIN") from exc

    # -- sending ----------------------------------------------------------------------------------

    def _mail_options(self, smtp: smtplib.SMTP, msg: OutgoingMessage, sender: str, rcpt: str) -> list[str] | SendResult:
        """MAIL FROM options the message needs (SMTPUTF8, 8BITMIME), or the FAILED result when the
        server lacks one."""
        options: list[str] = []
        head, body = (b"", b"") if msg.mime.isascii() else split_mime(msg.mime)  # type: ignore[union-attr]
        if not (sender.isascii() and rcpt.isascii() and head.isascii()):
            if not smtp.has_extn("smtputf8"):
                return SendResult(msg.recipient_id, Status.FAILED,
                                  reason=f"needs SMTPUTF8; server {self.address} does not offer it")
            options.append("SMTPUTF8")
        if not body.isascii():
            if not smtp.has_extn("8bitmime"):
                return SendResult(msg.recipient_id, Status.FAILED,
                                  reason=f"8-bit body needs 8BITMIME; server {self.address} does not offer it")
            options.append("BODY=8BITMIME")
        return options

    def _send_one(self, smtp: smtplib.SMTP, msg: OutgoingMessage) -> SendResult:
        """One SMTP transaction for one recipient; raises ConnectionLost when the session died."""
        if msg.mime is None:
            raise PermanentTransportError(f"message for {msg.to_email} has no MIME bytes.",
                                          "the send loop must build mime for transports with needs_mime")
        sender = envelope_address(msg.envelope_from)
        rcpt = envelope_address(msg.to_email)
        options = self._mail_options(smtp, msg, sender, rcpt)
        if isinstance(options, SendResult):
            return options
        stage = "MAIL FROM"
        try:
            # sendmail() sends RSET itself after a refused MAIL/RCPT/DATA (and closes on 421),
            # so the session stays usable for the next message.
            smtp.sendmail(sender, [rcpt], msg.mime, mail_options=options)
            code, text = smtp.data_reply  # type: ignore[attr-defined]
            return SendResult(msg.recipient_id, Status.SENT, provider_id=reply_text(text) or None, code=str(code))
        except smtplib.SMTPRecipientsRefused as exc:
            stage = "RCPT TO"
            code, text = next(iter(exc.recipients.values()))
        except smtplib.SMTPSenderRefused as exc:
            code, text = exc.smtp_code, exc.smtp_error
        except smtplib.SMTPDataError as exc:
            stage = "DATA"
            code, text = exc.smtp_code, exc.smtp_error
        except smtplib.SMTPServerDisconnected as exc:
            raise ConnectionLost(f"connection lost: {self._failure(exc)}") from exc
        except smtplib.SMTPResponseException as exc:  # e.g. an over-long reply line; smtplib closed
            raise ConnectionLost(f"bad reply: {self._failure(exc)}") from exc
        except OSError as exc:
            raise ConnectionLost(f"connection lost: {self._failure(exc)}") from exc
        return self._refusal(msg, code, text, stage)

    def _refusal(self, msg: OutgoingMessage, code: int, text: bytes, stage: str) -> SendResult:
        """What a refused MAIL FROM / RCPT TO / DATA means for this reader."""
        reason = f"{code} {reply_text(text)} (at {stage}, {self.address})"
        if code == 421 or code < 0:  # the server is closing this session: not about this recipient
            raise ConnectionLost(reason, str(code))
        if 400 <= code < 500:
            return SendResult(msg.recipient_id, Status.DEFERRED, code=str(code), reason=reason)
        if 500 <= code < 600:
            # A refusal at MAIL FROM is about our sender (or session), not the reader: never suppress,
            # and let `digest retry` send it again once the sender is fixed.
            about_sender = stage == "MAIL FROM"
            suppress = not about_sender and should_suppress(code, text)
            return SendResult(msg.recipient_id, Status.FAILED, code=str(code), reason=reason, suppress=suppress,
                              retryable=about_sender)
        return SendResult(msg.recipient_id, Status.DEFERRED, code=str(code), reason=reason)

    def _deliver(self, conn: _Connection, msg: OutgoingMessage) -> SendResult:
        """Send one message; after a lost connection reconnect and retry it once (raises _Dead if that fails)."""
        lost: ConnectionLost | None = None
        for _attempt in range(2):
            try:
                smtp = conn.ensure()
            except DigestError as exc:  # transient, TLS or auth: decided once the batch is over
                raise _Dead(exc) from exc
            try:
                return self._send_one(smtp, msg)
            except ConnectionLost as exc:
                conn.drop()
                lost = exc
        assert lost is not None
        # Twice in a row: the server is unhealthy. Defer this one and stop using this connection
        # for the batch rather than spend two timeouts on every remaining message.
        raise _Dead(TransientTransportError(
            f"SMTP server {self.address}: {lost.reason}, again after reconnecting.",
            "the send loop retries deferred messages later"))

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """Send each message in its own transaction; one result per message, in order.

        A lost connection is re-opened and the message retried once. When the connection cannot be
        re-opened, the messages not yet sent are DEFERRED; if no message got any answer, the error
        itself is raised (TransientTransportError, TransportAuthError, PermanentTransportError).
        """
        if self._conn is None:
            self.open()
        conn = self._conn
        assert conn is not None
        results: list[SendResult] = []
        error: DigestError | None = None
        for msg in messages:
            try:
                results.append(self._deliver(conn, msg))
            except _Dead as exc:
                error = exc.error
                break
        if error is None:
            return results
        if not results:
            raise error
        # Some messages were answered: report them, defer the rest. A non-transient error (auth,
        # TLS) recurs on the next batch's reconnect, where nothing is answered, and is raised then.
        for k, msg in enumerate(messages[len(results):]):
            what = "not sent" if k == 0 else "not attempted"
            results.append(SendResult(msg.recipient_id, Status.DEFERRED, reason=f"{what}: {error.message}"))
        return results


