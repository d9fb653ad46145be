"""Reliable server-side conversion events for the OpenAI Ads Conversions API."""

from __future__ import annotations
