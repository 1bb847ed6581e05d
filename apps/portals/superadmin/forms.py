from django import forms

from apps.core.forms import StyledForm, StyledModelForm
from apps.tenancy.models import Client, Partner


class PartnerForm(StyledModelForm):
    class Meta:
        model = Partner
        fields = ["name", "slug", "contact_email"]
        help_texts = {"slug": "Short permanent identifier, e.g. “northwind”."}


class PartnerEditForm(StyledModelForm):
    class Meta:
        model = Partner
        fields = ["name", "contact_email"]


class InviteForm(StyledForm):
    full_name = forms.CharField(max_length=150, label="Full name")
    email = forms.EmailField(label="Email")


class ClientFilterForm(StyledForm):
    q = forms.CharField(required=False, label="Name")
    partner = forms.ModelChoiceField(
        queryset=Partner.objects.all(), required=False, empty_label="All partners"
    )
    status = forms.ChoiceField(choices=[("", "Any status"), *Client.Status.choices], required=False)
