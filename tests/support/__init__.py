"""Helpers the tests share, one idea a module; the servers they talk to are in tests/fakes/.

- `paths`: where the repository's files are;
- `rosters`: roster CSV rows and files;
- `workspace`: a test's folder with its config, rosters and state, and the CLI run on it;
- `cli`: what a CLI run returned, and `python -m connector` as a subprocess;
- `scim`: the test SCIM servers' token and config, and a direct look at what they hold;
- `servers`: a server that cannot be started skips on a laptop and fails in CI;
- `ids`: the key the tests' configs derive externalIds with, and the externalId it makes;
- `ldap`: a directory source on a test slapd, and staff to put in it;
- `ss12000`: an SS 12000 source on the fake server, and a workspace syncing from it;
- `town`: three schools, 60 students and 4 staff, and what the vendor should hold for them;
- `browser`: headless Chromium's DOM of a page and a screenshot into the CI artifacts;
- `dom`: a tiny DOM from an HTML page, to find elements by tag, id or class;
- `egil`: an EGIL target's config and a small school roster.

A helper two test modules need lives here: test modules never import each other.
"""
