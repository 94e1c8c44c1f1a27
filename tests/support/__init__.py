"""Helpers the tests share, one idea a module; the servers they talk to are in tests/fakes/.

- `paths`: where the repository's files are;
- `rosters`: roster CSV rows and files;
- `workspace`: a test's folder with its config, rosters and state, and the CLI run on it;
- `cli`: what a CLI run returned;
- `scim`: the test SCIM servers' token and config, and a direct look at what they hold;
- `ids`: the key the tests' configs derive externalIds with.
"""
