"""A vendor fed by a file (Inläsningstjänst): a CSV rendered from the mapping and delivered by
SFTP, FTPS or into a local folder."""
