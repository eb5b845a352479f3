#!/usr/bin/perl
# Read sanitizer report files; print and count what is the module's: every
# ASan error and UBSan runtime error, and each leak whose allocation stack
# passes through mod_clinic.so (httpd, APR and PCRE keep start-up memory to
# exit, which LeakSanitizer reports too). Exit 1 if anything counted.
use strict;
use warnings;

my $count = 0;
for my $file (@ARGV) {
    open my $fh, '<', $file or die "$file: $!";
    my $text = do { local $/; <$fh> };
    for my $block (split /\n(?=(?:Direct|Indirect) leak of |==\d+==ERROR: )/, $text) {
        my $ours = $block =~ /^==\d+==ERROR: AddressSanitizer/m
                || $block =~ /runtime error:/
                || ($block =~ /^(?:Direct|Indirect) leak of / && $block =~ /mod_clinic\.so/);
        next unless $ours;
        $count++;
        print "--- $file\n$block\n";
    }
}
print "sanitizers: $count finding(s) in the module\n";
exit($count ? 1 : 0);
