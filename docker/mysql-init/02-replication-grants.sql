-- docker-compose.yml only: lets the demo user read the binlog as a replica (see README.md,
-- "MySQL / MariaDB prerequisites"). The entrypoint has created 'tidemark'@'%' from
-- MARIADB_USER/MARIADB_PASSWORD (with all privileges on MARIADB_DATABASE) before this runs.
-- scripts/quickstart.sh does not run it: scripts/dev-env.sh grants its tidemark user everything.

GRANT REPLICATION SLAVE, BINLOG MONITOR, SELECT ON *.* TO 'tidemark'@'%';
