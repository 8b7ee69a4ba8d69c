// Kubernetes name rules. Volume and snapshot names become file names in pools, so they are
// checked here once, with the same messages the API server gives.

const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dns1123Subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Problems with `name` as a DNS-1123 subdomain (max 253), or [] when valid. */
export function dns1123SubdomainProblems(name: string): string[] {
  const problems: string[] = [];
  if (name.length === 0) problems.push('must not be empty');
  if (name.length > 253) problems.push('must be no more than 253 characters');
  if (name.length > 0 && !dns1123Subdomain.test(name)) {
    problems.push(
      "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
    );
  }
  return problems;
}

/** Problems with `name` as a DNS-1123 label (max 63), or [] when valid. */
export function dns1123LabelProblems(name: string): string[] {
  const problems: string[] = [];
  if (name.length === 0) problems.push('must not be empty');
  if (name.length > 63) problems.push('must be no more than 63 characters');
  if (name.length > 0 && !dns1123Label.test(name)) {
    problems.push(
      "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
    );
  }
  return problems;
}

export function isDns1123Subdomain(name: string): boolean {
  return dns1123SubdomainProblems(name).length === 0;
}

export function isDns1123Label(name: string): boolean {
  return dns1123LabelProblems(name).length === 0;
}

/**
 * Backend snapshot names. They are ids like `<pvName>_<snapshotName>_<unixNanos>` (DESIGN.md §3),
 * so underscores and dots are allowed; they never become file names.
 */
const snapshotNamePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;

/** Problems with `name` as a backend snapshot name, or [] when valid. */
export function snapshotNameProblems(name: string): string[] {
  if (name.length === 0) return ['must not be empty'];
  if (name.length > 253) return ['must be no more than 253 characters'];
  if (!snapshotNamePattern.test(name)) {
    return ["must consist of letters, digits, '_', '-' or '.', and start with a letter or digit"];
  }
  return [];
}

export function isSnapshotName(name: string): boolean {
  return snapshotNameProblems(name).length === 0;
}
