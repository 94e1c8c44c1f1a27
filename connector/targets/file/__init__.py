"""A vendor fed by a file (Inläsningstjänst): a CSV rendered from the file mapping, planned
against the last delivered file, and delivered by SFTP, FTPS or into a local folder."""
