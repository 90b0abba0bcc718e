package main

import "github.com/spf13/cobra"

func (c *cli) benchCommand() *cobra.Command {
	return &cobra.Command{Use: "bench", Short: "Benchmark a server (see docs/benchmarks.md)", Hidden: true,
		RunE: func(cmd *cobra.Command, args []string) error { return nil }}
}
