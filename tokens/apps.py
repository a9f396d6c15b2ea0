from django.apps import AppConfig
from django.db.models.signals import post_migrate


class TokensConfig(AppConfig):
    name = "tokens"
    verbose_name = "Tokens and signing keys"

    def ready(self) -> None:
        from tokens import keys

        post_migrate.connect(keys.install_triggers, sender=self, dispatch_uid="signing-key-triggers")
