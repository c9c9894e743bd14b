import { postgresDatabaseScript, postgresInstallScript } from "../../src/provision/postgres";
import { renderBackupScript, renderBackupUnits, renderCreateDatabaseSql, renderPgHbaBlock, renderPostgresConf } from "../../src/render/postgres";
import { golden } from "../support/golden";
import { goldenPostgresSettings } from "../support/unit/fixtures";

describe("postgres: golden files (update with `npm run golden:update`, review the diff)", () => {
    const pg = goldenPostgresSettings;
    const units = () => renderBackupUnits(pg(), "/usr/local/lib/pulumi-matrix/pg-backup.sh");
    golden("postgres", "50-pulumi-matrix.conf", () => renderPostgresConf(pg()));
    golden("postgres", "pg_hba-block.conf", () => renderPgHbaBlock(pg()));
    golden("postgres", "create-database.sql", () => renderCreateDatabaseSql(pg(), "<database password>"));
    golden("postgres", "pg-backup.sh", () => renderBackupScript(pg()));
    golden("postgres", "pulumi-matrix-pg-backup.service", () => units().service);
    golden("postgres", "pulumi-matrix-pg-backup.timer", () => units().timer);
    golden("postgres", "scripts/postgres-server.sh", () => postgresInstallScript(pg(), 'PostgresDatabase "golden"'));
    golden("postgres", "scripts/postgres-database.sh", () => postgresDatabaseScript(pg(), "<database password>"));
});
