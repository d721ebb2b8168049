"""The transport registry: every name digest.toml may use has a class and a settings section."""

from __future__ import annotations

import pytest

from digest.errors import ConfigError
from digest.sections import TRANSPORT_SECTIONS
from digest.transports import REGISTRY, settings_classes, transport_class


def test_every_registered_transport_has_its_settings_section_and_class():
    # config knows the section names without importing the transports: they must stay the same.
    assert TRANSPORT_SECTIONS == tuple(REGISTRY)
    classes = settings_classes()
    assert set(classes) == set(REGISTRY)
    for name in REGISTRY:
        assert transport_class(name).name == name  # the class answers to its registry name
        assert classes[name] is transport_class(name).settings_class


def test_an_unknown_transport_name_suggests_the_nearest():
    with pytest.raises(ConfigError, match=r"unknown transport 'smpt'. Did you mean 'smtp'\?"):
        transport_class("smpt")
