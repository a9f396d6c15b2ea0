from django.apps import AppConfig
from django.core.signals import request_finished


class ClientsConfig(AppConfig):
    name = "clients"
    verbose_name = "Client registry"

    def ready(self) -> None:
        from clients import registry

        registry.connect_signals()
        request_finished.connect(registry.flush_uses, dispatch_uid="registry-flush-uses")
