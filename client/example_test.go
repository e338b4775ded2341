package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/dynamic-workers/gateway/client"
	"github.com/dynamic-workers/gateway/execution"
)

func ExampleClient_Execute() {
	c := client.New(gatewayURL) // such as "http://127.0.0.1:8080"
	res, err := c.Execute(context.Background(), &execution.Request{
		Code: `export default {
  async fetch(request, env) {
    console.log("hello from", env.WHO);
    return new Response("Done");
  }
}`,
		Env: map[string]any{"WHO": "the guest"},
	})
	if err != nil {
		log.Fatal(err) // the gateway refused the request or could not be reached
	}
	if !res.Success {
		log.Fatalf("guest failed: %s: %s", res.Error.Code, res.Error.Message)
	}
	fmt.Println(res.Stdout)
	fmt.Println(res.Response.Status, res.Response.Body)
	// Output:
	// hello from the guest
	// 200 Done
}

func ExampleClient_Stream() {
	c := client.New(gatewayURL)
	s, err := c.Stream(context.Background(), &execution.Request{
		Code: `export default {
  async fetch() {
    console.log("step 1");
    await new Promise(resolve => setTimeout(resolve, 100));
    console.warn("step 2");
    return new Response("ok");
  }
}`,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	for s.Next() {
		switch ev := s.Event(); ev.Type {
		case execution.EventStart:
			fmt.Println("started")
		case execution.EventLog:
			fmt.Printf("%s: %s\n", ev.Log.Stream, ev.Log.Message)
		case execution.EventResult:
			fmt.Println("success:", ev.Result.Success, ev.Result.Response.Body)
		}
	}
	if err := s.Err(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// started
	// stdout: step 1
	// stderr: step 2
	// success: true ok
}

func ExampleStream_Events() {
	c := client.New(gatewayURL)
	s, err := c.Stream(context.Background(), &execution.Request{
		Code: `export default { fetch() { console.log("hi"); return new Response("bye"); } }`,
	})
	if err != nil {
		log.Fatal(err)
	}
	for ev, err := range s.Events() {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ev.Type)
	}
	// Output:
	// start
	// log
	// result
}

func ExampleError() {
	c := client.New(gatewayURL)
	_, err := c.Execute(context.Background(), &execution.Request{
		Code:      `export default { fetch() { return new Response("never") } }`,
		TimeoutMs: -1,
		Isolate:   "shared",
	})
	var gwErr *client.Error
	if errors.As(err, &gwErr) {
		fmt.Println(gwErr.StatusCode, gwErr.Code)
		for _, fe := range gwErr.Errors {
			fmt.Printf("%s: %s\n", fe.Field, fe.Code)
		}
	}
	// Output:
	// 422 invalid_request
	// timeoutMs: out_of_range
	// isolate: invalid
}
