"""The reference Adaptive API Mesh: resilient connectors to flaky third-party APIs.

Public surface (see ``aam/README.md``): the AAM-under-test contract (:class:`AamUnderTest`,
:class:`ConnectorDescriptor`, :class:`Operation`, :class:`Outcome`, :class:`ReplayCounts`), the
reference implementation :class:`Mesh`, :class:`AamProfile`, :class:`Defence`,
:class:`RatePolicy`, :class:`NetworkProfile`, the ``errors`` module. Nothing here imports
``farm``: an AAM knows an API only through its descriptor and the wire.
"""

from aam import errors
from aam.connector import ConnectorInstance
from aam.contract import AamUnderTest, Operation, Outcome, ReplayCounts
from aam.credentials import CredentialDescriptor, TenantCredentials
from aam.descriptor import ConnectorDescriptor
from aam.dlq import DlqEntry, ReplayReport
from aam.mesh import Mesh
from aam.policy import RatePolicy
from aam.profile import AamProfile, Defence
from aam.stats import ConnectorStats
from aam.transport import NetworkProfile

__all__ = [
    "AamProfile",
    "AamUnderTest",
    "ConnectorDescriptor",
    "ConnectorInstance",
    "ConnectorStats",
    "CredentialDescriptor",
    "Defence",
    "DlqEntry",
    "Mesh",
    "NetworkProfile",
    "Operation",
    "Outcome",
    "RatePolicy",
    "ReplayCounts",
    "ReplayReport",
    "TenantCredentials",
    "errors",
]
