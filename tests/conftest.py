"""The shared fixtures, registered once for every test folder (pytest reads pytest_plugins only here)."""

pytest_plugins = [
    "tests.helpers.project",  # project, settings
    "tests.helpers.smtp_server",  # smtp_server, smtp_server_factory, tls_cert, tls_cert_factory, silent_server, tcp_proxy_factory
    "tests.helpers.disk",  # small_disk: a tmpfs that can be filled up
    "tests.helpers.fake_providers",  # no fixtures yet: the fake mail-service APIs (plain classes and helpers)
    "tests.helpers.browser",  # browser: headless Chromium, one per module
]
