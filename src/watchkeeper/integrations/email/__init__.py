"""Email over SMTP (STARTTLS or TLS, optional login): one mail per incident change, threaded."""
