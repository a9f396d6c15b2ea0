from django.apps import AppConfig
from django.core.signals import request_finished, request_started
from django.db.models.signals import post_migrate


class ClientsConfig(AppConfig):
    name = "clients"
    verbose_name = "Client registry"

    def ready(self) -> None:
        from clients import registry, usage

        post_migrate.connect(registry.install_triggers, sender=self, dispatch_uid="registry-triggers")
        request_started.connect(registry.request_started, dispatch_uid="registry-request-started")
        request_finished.connect(registry.request_finished, dispatch_uid="registry-request-finished")
        request_finished.connect(registry.flush_uses, dispatch_uid="registry-flush-uses")
        request_finished.connect(usage.flush, dispatch_uid="usage-flush")
