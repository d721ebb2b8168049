"""Issue file -> rendered email: loading, Markdown, merge slots, Jinja -> MJML -> HTML, the built web version."""
