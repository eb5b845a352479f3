package Clinic::Schema;
# Helpers for the schema tests: where sql/ is, and loading a file into a
# database the way an administrator does (psql -v ON_ERROR_STOP=1, sqlite3
# -bail), given the database's DBI data source.
use strict;
use warnings;

use Exporter 'import';
use Apache::Test ();

our @EXPORT = qw(sql_dir apply_sql);

sub sql_dir { Apache::Test::vars('t_dir') . '/../sql' }

# apply_sql($dsn, $file): (success, output)
sub apply_sql {
    my ($dsn, $file) = @_;
    my @cmd;
    if ($dsn =~ /^dbi:Pg:host=([^;]+);dbname=(.+)$/) {
        @cmd = ('psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', $1, '-d', $2, '-f', $file);
    } elsif ($dsn =~ /^dbi:SQLite:dbname=(.+)$/) {
        @cmd = ('sh', '-c', 'exec sqlite3 -bail "$0" < "$1"', $1, $file);
    } else {
        die "apply_sql: unknown data source $dsn";
    }
    my $pid = open(my $out, '-|') // die "fork: $!";
    if (!$pid) {
        open(STDERR, '>&', \*STDOUT) or die "stderr: $!";
        exec @cmd or die "exec $cmd[0]: $!";
    }
    local $/;
    my $text = <$out> // '';
    close $out;
    return ($? == 0, $text);
}

1;
