"""What this project was generated with: the answers the rest of the package reads.

This is the one module in plugins/ that the project template fills in. Everything else is
plain Python that imports these names, so changing the owner or an alert channel means
changing it here (and, for a channel, adding its module and provider: see alerting.py).
"""

PROJECT_SLUG = "{{ cookiecutter.project_slug }}"
OWNER = {{ cookiecutter.owner_team | tojson }}
CONTACT_EMAIL = {{ cookiecutter.contact_email | tojson }}
# Where alerts go: "slack", "email" or "none" for chat; "pagerduty" or "none" for the pager.
CHAT_CHANNEL = {{ cookiecutter.alert_chat | tojson }}
PAGER_CHANNEL = {{ cookiecutter.alert_pager | tojson }}
