import{createRequire as __pipelineCreateRequire}from'node:module';const require=__pipelineCreateRequire(import.meta.url);
import{a as s}from"./chunk-REV5YRJC.js";import{a as l}from"./chunk-WO47TEWM.js";import{d as p}from"./chunk-66G7R2PH.js";import{a as o,d as u}from"./chunk-UZMZCFOP.js";var a=u(l(),1);function f(i,t={}){let r=t.accepted??"a YAML or JSON document";return s("yaml",r,(c,e)=>{let n;try{n=(0,a.parse)(c,{prettyErrors:!0})}catch(d){let m=d.message.split(`
`)[0];throw new p(e,`is not valid YAML (${m})`,r)}return i(n,e)},t)}o(f,"yamlInput");export{f as a};
