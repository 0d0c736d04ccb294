from django.apps import AppConfig


class RightsConfig(AppConfig):
    """People's rights over their photos: provenance, takedown requests, the blocklist that
    keeps removed images out, withdrawal notices for published releases. The top of the chain:
    it reaches every app below to remove an image everywhere it went."""

    name = "rights"
    verbose_name = "Rights and takedown"

    def ready(self) -> None:
        from curation import admission

        from .blocklist import load_blocklist

        admission.register(load_blocklist)
