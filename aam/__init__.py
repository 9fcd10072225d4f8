"""The Adaptive API Mesh: resilient connectors to flaky third-party APIs (the system under test).

Public surface (see ``aam/README.md``): :class:`Mesh`, :class:`AamProfile`, :class:`Defence`,
:class:`TenantCredentials`, :class:`RatePolicy`, :class:`NetworkProfile`, the ``errors`` module.
"""

from aam import errors
from aam.connector import ConnectorInstance
from aam.credentials import CredentialDescriptor, TenantCredentials
from aam.dlq import DlqEntry, ReplayReport
from aam.mesh import Mesh
from aam.policy import RatePolicy
from aam.profile import AamProfile, Defence
from aam.stats import ConnectorStats
from aam.transport import NetworkProfile

__all__ = [
    "AamProfile",
    "ConnectorInstance",
    "ConnectorStats",
    "CredentialDescriptor",
    "Defence",
    "DlqEntry",
    "Mesh",
    "NetworkProfile",
    "RatePolicy",
    "ReplayReport",
    "TenantCredentials",
    "errors",
]
