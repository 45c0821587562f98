"""Kafka ACL bindings: stored, listed and matched by filter as Kafka's StandardAuthorizer does.

The core holds the bindings and the filter semantics (ResourcePatternFilter
and AccessControlEntryFilter in Kafka's clients library); the Kafka front end
validates requests and maps results to error codes.  Enum values are Kafka's
wire codes.  Bindings are stored, not enforced: wiregate authorizes every
request, like a broker whose principal is a super user.
"""

from __future__ import annotations

import dataclasses

# ResourceType
RESOURCE_UNKNOWN, RESOURCE_ANY, TOPIC, GROUP, CLUSTER, TRANSACTIONAL_ID, DELEGATION_TOKEN, USER = range(8)
# PatternType
PATTERN_UNKNOWN, PATTERN_ANY, MATCH, LITERAL, PREFIXED = range(5)
# AclOperation
OPERATION_UNKNOWN, OPERATION_ANY = 0, 1
# AclPermissionType
PERMISSION_UNKNOWN, PERMISSION_ANY, DENY, ALLOW = range(4)

WILDCARD = "*"

RESOURCE_TYPE_NAMES = {0: "UNKNOWN", 1: "ANY", 2: "TOPIC", 3: "GROUP", 4: "CLUSTER", 5: "TRANSACTIONAL_ID", 6: "DELEGATION_TOKEN", 7: "USER"}
PATTERN_TYPE_NAMES = {0: "UNKNOWN", 1: "ANY", 2: "MATCH", 3: "LITERAL", 4: "PREFIXED"}
OPERATION_NAMES = {
    0: "UNKNOWN", 1: "ANY", 2: "ALL", 3: "READ", 4: "WRITE", 5: "CREATE", 6: "DELETE", 7: "ALTER", 8: "DESCRIBE",
    9: "CLUSTER_ACTION", 10: "DESCRIBE_CONFIGS", 11: "ALTER_CONFIGS", 12: "IDEMPOTENT_WRITE", 13: "CREATE_TOKENS", 14: "DESCRIBE_TOKENS",
}
PERMISSION_NAMES = {0: "UNKNOWN", 1: "ANY", 2: "DENY", 3: "ALLOW"}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AclBinding:
    """A resource pattern and an access control entry (Kafka's AclBinding)."""

    resource_type: int
    resource_name: str
    pattern_type: int
    principal: str
    host: str
    operation: int
    permission_type: int


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AclBindingFilter:
    """Kafka's AclBindingFilter; None for a name, principal or host matches any."""

    resource_type: int
    resource_name: str | None
    pattern_type: int
    principal: str | None
    host: str | None
    operation: int
    permission_type: int

    def matches(self, binding: AclBinding) -> bool:
        return self._pattern_matches(binding) and self._entry_matches(binding)

    def _pattern_matches(self, binding: AclBinding) -> bool:
        # ResourcePatternFilter.matches
        if self.resource_type != RESOURCE_ANY and self.resource_type != binding.resource_type:
            return False
        if self.pattern_type not in (PATTERN_ANY, MATCH) and self.pattern_type != binding.pattern_type:
            return False
        if self.resource_name is None:
            return True
        if self.pattern_type in (PATTERN_ANY, binding.pattern_type):
            return self.resource_name == binding.resource_name
        if binding.pattern_type == LITERAL:
            return self.resource_name == binding.resource_name or binding.resource_name == WILDCARD
        if binding.pattern_type == PREFIXED:
            return self.resource_name.startswith(binding.resource_name)
        return False

    def _entry_matches(self, binding: AclBinding) -> bool:
        # AccessControlEntryFilter.matches
        if self.principal is not None and self.principal != binding.principal:
            return False
        if self.host is not None and self.host != binding.host:
            return False
        if self.operation != OPERATION_ANY and self.operation != binding.operation:
            return False
        return self.permission_type == PERMISSION_ANY or self.permission_type == binding.permission_type

    def unknown_component(self) -> str | None:
        """Why Kafka refuses the filter (AclBindingFilter.findIndefiniteField style), or None."""
        if self.resource_type == RESOURCE_UNKNOWN:
            return "Resource type is UNKNOWN."
        if self.pattern_type == PATTERN_UNKNOWN:
            return "Resource pattern type is UNKNOWN."
        if self.operation == OPERATION_UNKNOWN:
            return "Operation is UNKNOWN."
        if self.permission_type == PERMISSION_UNKNOWN:
            return "Permission type is UNKNOWN."
        return None


def validate_new_binding(binding: AclBinding) -> str | None:
    """AclControlManager.validateNewAcl: the INVALID_REQUEST text, or None when valid."""
    if binding.resource_type not in RESOURCE_TYPE_NAMES or binding.resource_type in (RESOURCE_UNKNOWN, RESOURCE_ANY):
        return f"Invalid resourceType {RESOURCE_TYPE_NAMES.get(binding.resource_type, 'UNKNOWN')}"
    if binding.pattern_type not in (LITERAL, PREFIXED):
        return f"Invalid patternType {PATTERN_TYPE_NAMES.get(binding.pattern_type, 'UNKNOWN')}"
    if binding.operation not in OPERATION_NAMES or binding.operation in (OPERATION_UNKNOWN, OPERATION_ANY):
        return f"Invalid operation {OPERATION_NAMES.get(binding.operation, 'UNKNOWN')}"
    if binding.permission_type not in (DENY, ALLOW):
        return f"Invalid permissionType {PERMISSION_NAMES.get(binding.permission_type, 'UNKNOWN')}"
    if not binding.resource_name:
        return "Resource name should not be empty"
    if ":" not in binding.principal:
        return f"Could not parse principal from `{binding.principal}` (no colon is present separating the principal type from the principal name)"
    return None


class Acls:
    """The broker's ACL bindings, in creation order, without duplicates."""

    def __init__(self) -> None:
        self._bindings: dict[AclBinding, None] = {}

    def __len__(self) -> int:
        return len(self._bindings)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(list(self._bindings))

    def add(self, binding: AclBinding) -> None:
        """Store ``binding``; an identical binding is kept once, as Kafka does."""
        self._bindings[binding] = None

    def matching(self, acl_filter: AclBindingFilter) -> list[AclBinding]:
        return [binding for binding in self._bindings if acl_filter.matches(binding)]

    def delete(self, acl_filter: AclBindingFilter) -> list[AclBinding]:
        """Remove and return every binding the filter matches."""
        removed = self.matching(acl_filter)
        for binding in removed:
            del self._bindings[binding]
        return removed
