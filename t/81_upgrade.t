# The schema's upgrade path (docs/API.md §6, docs/operations.md: Upgrading the
# schema): version 1 (sql/upgrade/<db>-1.sql) brought up by every later step
# equals a fresh sql/schema-<db>.sql (tables, columns, types, defaults,
# indexes, constraints, domain, version); the rows survive; a step applied
# twice is refused and changes nothing.
use strict;
use warnings FATAL => 'all';

use Test::More;
use Apache::Test ();
use DBI ();
use File::Temp ();
use lib 't/lib';
use Clinic::Test;
use Clinic::Schema;

my $kind = db_kind();
my $sql = sql_dir();
my @steps = sort { ($a =~ /-(\d+)\.sql$/)[0] <=> ($b =~ /-(\d+)\.sql$/)[0] }
            glob("$sql/upgrade/$kind-*.sql");
my ($latest) = $steps[-1] =~ /-(\d+)\.sql$/;
is(join(' ', map { /-(\d+)\.sql$/ } @steps), join(' ', 1 .. $latest),
   "sql/upgrade/$kind-1.sql .. -$latest.sql, none missing");

my $tmp = File::Temp::tempdir(CLEANUP => 1);
my (%dsn, $admin);
if ($kind eq 'pgsql') {
    $admin = DBI->connect("dbi:Pg:host=$ENV{CLINIC_PGDATA};dbname=postgres", '', '',
                          { RaiseError => 1, AutoCommit => 1, PrintError => 0 });
}

sub fresh_db {
    my ($name) = @_;
    if ($kind eq 'pgsql') {
        $admin->do("DROP DATABASE IF EXISTS $name");
        $admin->do("CREATE DATABASE $name");
        return $dsn{$name} = "dbi:Pg:host=$ENV{CLINIC_PGDATA};dbname=$name";
    }
    return $dsn{$name} = "dbi:SQLite:dbname=$tmp/$name.db";
}

sub load { my ($name, $file) = @_; apply_sql($dsn{$name}, $file) }

sub connect_db {
    DBI->connect($dsn{ $_[0] }, '', '', { RaiseError => 1, AutoCommit => 1, PrintError => 0 });
}

# Everything about the schema that the module, administrators and other
# systems rely on, as sorted text lines.
sub describe {
    my ($name) = @_;
    my $h = connect_db($name);
    my @d;
    my $rows = sub { my ($tag, $q) = @_; push @d, map { join ' | ', $tag, map { $_ // 'NULL' } @$_ }
                                                   @{ $h->selectall_arrayref($q) } };
    if ($kind eq 'pgsql') {
        $rows->(table => q{SELECT table_name, table_type FROM information_schema.tables
                           WHERE table_schema = 'public' ORDER BY 1});
        $rows->(column => q{SELECT table_name, column_name, data_type, character_maximum_length,
                                   domain_name, is_nullable, column_default, is_identity,
                                   identity_generation
                            FROM information_schema.columns WHERE table_schema = 'public'
                            ORDER BY table_name, ordinal_position});
        $rows->(index => q{SELECT tablename, indexname, indexdef FROM pg_indexes
                           WHERE schemaname = 'public' ORDER BY 1, 2});
        $rows->(constraint => q{SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
                                FROM pg_constraint WHERE connamespace = 'public'::regnamespace
                                ORDER BY 1, 2});
        $rows->(domain => q{SELECT domain_name, data_type, domain_default FROM information_schema.domains
                            WHERE domain_schema = 'public' ORDER BY 1});
        $rows->(sequence => q{SELECT sequencename, data_type, start_value, increment_by FROM pg_sequences
                              WHERE schemaname = 'public' ORDER BY 1});
    } else {
        $rows->(object => q{SELECT type, name, tbl_name FROM sqlite_master
                            WHERE name NOT LIKE 'sqlite_%' ORDER BY 1, 2});
        $rows->(journal => 'PRAGMA journal_mode');
        for my $t (map { $_->[0] } @{ $h->selectall_arrayref(
                q{SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1}) }) {
            $rows->("column $t" => "PRAGMA table_info($t)");
            $rows->("foreign key $t" => "PRAGMA foreign_key_list($t)");
            $rows->("indexes $t" => "PRAGMA index_list($t)");
            $rows->("index column $_->[1]" => "PRAGMA index_xinfo($_->[1])")
                for @{ $h->selectall_arrayref("PRAGMA index_list($t)") };
        }
    }
    eval { $rows->(version => 'SELECT version, count(*) FROM clinic_schema GROUP BY version'); 1 }
        or push @d, 'version | none';
    return join "\n", @d, '';
}

# is() for two descriptions, naming the lines that differ.
sub same_schema {
    my ($got, $want, $what) = @_;
    my %w = map { $_ => 1 } split /\n/, $want;
    my %g = map { $_ => 1 } split /\n/, $got;
    ok($got eq $want, $what) and return;
    diag("only in the upgraded database: $_") for grep { !$w{$_} } split /\n/, $got;
    diag("only in the fresh schema:      $_") for grep { !$g{$_} } split /\n/, $want;
}

sub count_of { my ($name, $t) = @_; (connect_db($name)->selectrow_array("SELECT count(*) FROM $t"))[0] }

my @demo = ("$sql/demo-data.sql", $kind eq 'pgsql' ? ("$sql/demo-sequences-pgsql.sql") : ());

fresh_db('clinic_up_fresh');
my ($ok, $out) = load('clinic_up_fresh', "$sql/schema-$kind.sql");
ok($ok, "sql/schema-$kind.sql loads") or diag($out);
load('clinic_up_fresh', $_) for @demo;
my $want = describe('clinic_up_fresh');
like($want, qr/^version \| $latest \| 1$/m, "a fresh schema is version $latest, one row");

fresh_db('clinic_up_v1');
($ok, $out) = load('clinic_up_v1', $steps[0]);
ok($ok, "version 1 loads ($kind-1.sql)") or diag($out);
load('clinic_up_v1', $_) for @demo;
isnt(describe('clinic_up_v1'), $want, 'version 1 differs from the fresh schema (the comparison sees it)');
for my $step (@steps[1 .. $#steps]) {
    ($ok, $out) = load('clinic_up_v1', $step);
    ok($ok, "step " . ($step =~ s{.*/}{}r) . " applies") or diag($out);
}
same_schema(describe('clinic_up_v1'), $want, "version 1 + every step = a fresh sql/schema-$kind.sql");
is(count_of('clinic_up_v1', 'patients'), count_of('clinic_up_fresh', 'patients'), 'the patients survive');
is(count_of('clinic_up_v1', 'appointments'), count_of('clinic_up_fresh', 'appointments'),
   'the appointments survive');

($ok, $out) = load('clinic_up_v1', $steps[-1]);
ok(!$ok, 'the last step applied again is refused') or diag($out);
same_schema(describe('clinic_up_v1'), $want, '... and changes nothing');

# Tables made by hand from the contract: no JSON domain, no secondary indexes.
fresh_db('clinic_up_bare');
load('clinic_up_bare', $steps[0]);
load('clinic_up_bare', $_) for @demo;
{
    my $h = connect_db('clinic_up_bare');
    $h->do('DROP DOMAIN clinic_json_text') if $kind eq 'pgsql';
    $h->do("DROP INDEX $_") for qw(visits_patient_id_idx practice_patients_doctor_id_idx
                                   appointments_doctor_id_idx);
}
load('clinic_up_bare', $_) for @steps[1 .. $#steps];
same_schema(describe('clinic_up_bare'), $want,
            'hand-made version-1 tables + every step = the fresh schema too');

if ($kind eq 'pgsql') {
    $admin->do("DROP DATABASE $_") for qw(clinic_up_fresh clinic_up_v1 clinic_up_bare);
}
done_testing();
