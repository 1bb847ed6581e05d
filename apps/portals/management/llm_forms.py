"""Management portal form of a deployment's LLM endpoint (OpenAI-compatible chat completions)."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from apps.runtime.models import LlmEndpoint
from apps.runtime.settings_services import (
    MAX_STEPS_LIMIT,
    MAX_TEMPERATURE,
    MAX_TIMEOUT_SECONDS,
    MAX_TOKENS_LIMIT,
)

from .forms import ServiceValidatedForm


class LlmEndpointForm(ServiceValidatedForm):
    """Where the deployment's LLM planner sends its requests, and the budgets of every task.

    The API key is write-only: the field is always empty on the page; leaving it empty keeps the
    stored key, "remove the stored key" clears it.
    """

    base_url = forms.URLField(
        max_length=300,
        label="Base URL",
        assume_scheme="https",
        help_text="The OpenAI-compatible API root, e.g. https://llm.acme.internal/v1 "
        "(vLLM, Ollama, Azure OpenAI).",
    )
    model = forms.CharField(
        max_length=120, label="Model", help_text="As the endpoint names it, e.g. llama3.1:8b."
    )
    api_key = forms.CharField(
        required=False,
        max_length=4000,
        label="API key",
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted and never shown again. Leave empty to keep the stored key.",
    )
    clear_api_key = forms.BooleanField(
        required=False, label="Remove the stored key (the endpoint takes none)"
    )
    allow_private_network = forms.BooleanField(
        required=False,
        label="The endpoint runs on a private or loopback address (on-premises)",
        help_text="Otherwise calls to private, loopback and link-local addresses are refused.",
    )
    temperature = forms.FloatField(min_value=0.0, max_value=MAX_TEMPERATURE, initial=0.0, label="Temperature")
    max_steps = forms.IntegerField(
        min_value=1,
        max_value=MAX_STEPS_LIMIT,
        initial=20,
        label="Max steps",
        help_text="Actions one task may propose.",
    )
    max_tokens = forms.IntegerField(
        min_value=1,
        max_value=MAX_TOKENS_LIMIT,
        initial=50_000,
        label="Max tokens",
        help_text="Tokens one task may use.",
    )
    max_cost = forms.DecimalField(
        min_value=Decimal("0"),
        max_digits=10,
        decimal_places=4,
        initial=Decimal("1"),
        label="Max cost",
        help_text="The cost one task may reach, in the price's currency.",
    )
    price_per_1k_tokens = forms.DecimalField(
        min_value=Decimal("0"),
        max_digits=10,
        decimal_places=6,
        initial=Decimal("0"),
        label="Price per 1,000 tokens",
    )
    timeout_seconds = forms.IntegerField(
        min_value=1, max_value=MAX_TIMEOUT_SECONDS, initial=60, label="Timeout (seconds)"
    )

    def __init__(self, *args, endpoint: LlmEndpoint | None = None, **kwargs):
        if endpoint is not None and "initial" not in kwargs:
            kwargs["initial"] = self.initial_for(endpoint)
        super().__init__(*args, **kwargs)
        self.has_key = bool(endpoint and endpoint.api_key)
        if not self.has_key:
            del self.fields["clear_api_key"]
            self.fields[
                "api_key"
            ].help_text = "Stored encrypted and never shown again. Leave empty if it takes none."

    @staticmethod
    def initial_for(endpoint: LlmEndpoint) -> dict:
        """What the form shows of stored settings: everything but the key."""
        return {
            "base_url": endpoint.base_url,
            "model": endpoint.model,
            "allow_private_network": endpoint.allow_private_network,
            "temperature": endpoint.temperature,
            "max_steps": endpoint.max_steps,
            "max_tokens": endpoint.max_tokens,
            "max_cost": endpoint.max_cost,
            "price_per_1k_tokens": endpoint.price_per_1k_tokens,
            "timeout_seconds": endpoint.timeout_seconds,
        }
